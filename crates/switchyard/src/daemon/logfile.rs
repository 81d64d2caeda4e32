//! Reading the background gateway's log: the last lines (`logs -n`, a failed `start`), what
//! was written since an offset (the output of one startup), and following it (`logs -f`)
//! across truncation and replacement by a rotation tool.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

/// How much of the end of the file is read to find the last lines.
const TAIL_WINDOW: u64 = 512 * 1024;

/// The file's size now (0 when it does not exist), to read what comes after it later.
pub fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The last `n` lines of the file.
pub fn tail(path: &Path, n: usize) -> io::Result<Vec<String>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_WINDOW);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    // A window that starts mid-file starts mid-line: drop the partial first line.
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..].iter().map(|l| (*l).to_owned()).collect())
}

/// Everything written after `offset`, as lines (the whole file if it shrank meanwhile).
pub fn lines_since(path: &Path, offset: u64) -> io::Result<Vec<String>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let from = if offset > len { 0 } else { offset };
    file.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).lines().map(str::to_owned).collect())
}

/// Copies what is appended to the file to `out`, starting at `offset`, until `out` fails
/// (a closed pipe) or the process is interrupted. A truncated or replaced file is read again
/// from its start.
pub fn follow(path: &Path, mut offset: u64, out: &mut dyn Write) -> io::Result<()> {
    let mut identity = file_identity(path);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let now = file_identity(path);
        if now != identity {
            identity = now;
            offset = 0;
        }
        match File::open(path) {
            Ok(mut file) => {
                let len = file.metadata()?.len();
                if len < offset {
                    offset = 0;
                }
                if len > offset {
                    file.seek(SeekFrom::Start(offset))?;
                    loop {
                        let n = file.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        out.write_all(&buf[..n])?;
                        offset += n as u64;
                    }
                    out.flush()?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => offset = 0,
            Err(e) => return Err(e),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(_path: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_returns_the_last_lines_and_since_returns_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&path, 2).unwrap(), vec!["b", "c"]);
        assert_eq!(tail(&path, 10).unwrap(), vec!["a", "b", "c"]);
        let mark = size(&path);
        std::fs::write(&path, "a\nb\nc\nd\ne\n").unwrap();
        assert_eq!(lines_since(&path, mark).unwrap(), vec!["d", "e"]);
        // Truncated meanwhile: everything.
        std::fs::write(&path, "z\n").unwrap();
        assert_eq!(lines_since(&path, mark).unwrap(), vec!["z"]);
        assert_eq!(size(&dir.path().join("missing")), 0);
    }
}
