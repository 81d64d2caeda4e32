//! `switchyard logs [-f] [-n N]`: the background gateway's log from the state directory
//! (where `start` and the generated service units send it).

use std::path::PathBuf;

use clap::Args;

use super::output;
use crate::config::ProcessEnv;
use crate::daemon::{StateDir, logfile};
use crate::exit;

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// State directory (default: $XDG_STATE_HOME/switchyard, else ~/.local/state/switchyard).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Keep printing what is appended (until Ctrl-C).
    #[arg(long, short = 'f')]
    pub follow: bool,

    /// How many of the last lines to print first.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
    pub lines: usize,
}

pub fn run(args: &LogsArgs) -> u8 {
    let dir = match StateDir::resolve(args.state_dir.as_deref(), &ProcessEnv) {
        Ok(dir) => dir,
        Err(message) => {
            output::stderr(&format!("switchyard: {message}"));
            return exit::USAGE;
        }
    };
    let path = dir.log_file();
    if !path.exists() && !args.follow {
        output::stderr(&format!(
            "switchyard: no log at {} yet: a gateway started with `switchyard start` (or the \
             service from `switchyard service install`) writes there; `switchyard serve` logs \
             to its terminal.",
            path.display()
        ));
        return exit::FAILED;
    }
    let offset = logfile::size(&path);
    match logfile::tail(&path, args.lines) {
        Ok(lines) if !lines.is_empty() => output::stdout(&lines.join("\n")),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            output::stderr(&format!("switchyard: cannot read {}: {err}", path.display()));
            return exit::FAILED;
        }
    }
    if args.follow {
        let mut out = std::io::stdout();
        // Ends when stdout closes (`| head`) or on Ctrl-C.
        let _ = logfile::follow(&path, offset, &mut out);
    }
    exit::OK
}
