//! nginx in front of gateway replicas, for `--compare replicas`: Debian's `/usr/sbin/nginx`
//! run as a child in the foreground, with its config, pid file, logs and temp paths in a
//! directory of its own, listening on a free loopback port. Never the machine's nginx.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::procs;

/// The nginx binary, `$BENCH_NGINX` or Debian's.
fn binary() -> PathBuf {
    std::env::var_os("BENCH_NGINX").map_or_else(|| PathBuf::from("/usr/sbin/nginx"), PathBuf::from)
}

/// `nginx -v`'s version, for the report (empty when it cannot be run).
pub fn version() -> String {
    Command::new(binary())
        .arg("-v")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().replace("nginx version: ", ""))
        .unwrap_or_default()
}

/// A running nginx: stopped (by its own pid) when dropped.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    /// The master, then its workers: whose CPU the front costs.
    pub pids: Vec<u32>,
}

/// How nginx talks to the gateways.
#[derive(Clone, Copy, Debug)]
pub struct Upstream {
    /// Idle connections to the gateways each worker keeps (`keepalive N`); 0: a new
    /// connection per request, as nginx does without the directive.
    pub keepalive: usize,
}

/// The configuration: round robin over `gateways`, HTTP/1.1 to them, responses relayed as
/// they arrive (`proxy_buffering off`, so a stream's events are not held back).
pub fn config(dir: &Path, listen: SocketAddr, gateways: &[SocketAddr], up: Upstream) -> String {
    let d = dir.display();
    let servers: String = gateways.iter().map(|g| format!("    server {g};\n")).collect();
    let keepalive = if up.keepalive > 0 {
        // Without these two, nginx speaks HTTP/1.0 upstream and closes after each request.
        format!("    keepalive {};\n    keepalive_requests 1000000;\n", up.keepalive)
    } else {
        String::new()
    };
    format!(
        "worker_processes auto;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         worker_rlimit_nofile 20000;\n\
         events {{\n    worker_connections 10000;\n}}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {d}/client_body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   # The load generator keeps its connections for the whole run.\n\
         \x20   keepalive_requests 1000000;\n\
         \x20   keepalive_timeout 300s;\n\
         \x20   upstream gateways {{\n{servers}{keepalive}    }}\n\
         \x20   server {{\n\
         \x20       listen {listen};\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://gateways;\n\
         \x20           proxy_http_version 1.1;\n\
         \x20           proxy_set_header Connection \"\";\n\
         \x20           proxy_set_header Host $host;\n\
         \x20           proxy_buffering off;\n\
         \x20           proxy_read_timeout 300s;\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n"
    )
}

impl Nginx {
    /// Writes the config into `dir` (created), starts nginx and waits until it accepts
    /// connections and its workers are up.
    pub fn start(dir: &Path, gateways: &[SocketAddr], up: Upstream) -> Result<Self, String> {
        let bin = binary();
        if !bin.exists() {
            return Err(format!(
                "{} not found: --compare replicas needs nginx (apt-get install nginx, or set \
                 BENCH_NGINX to its path)",
                bin.display()
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port = procs::free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(dir, addr, gateways, up)).map_err(|e| e.to_string())?;
        let mut child = Command::new(&bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            // Before the config is read nginx logs to its compiled-in path unless told.
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let master = child.id();
        for _ in 0..500 {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                return Err(format!("nginx exited ({status}): {}", log.trim()));
            }
            let workers = procs::children(master);
            if !workers.is_empty() && std::net::TcpStream::connect(addr).is_ok() {
                let mut pids = vec![master];
                pids.extend(workers);
                return Ok(Self { child, addr, pids });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        procs::stop(&mut child);
        Err(format!("nginx did not accept connections on {addr} within 5 s"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM is nginx's fast shutdown: the workers go with the master.
        procs::stop(&mut self.child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_off_leaves_the_directive_out_and_lists_every_gateway() {
        let gateways: Vec<SocketAddr> =
            vec!["127.0.0.1:4001".parse().unwrap(), "127.0.0.1:4002".parse().unwrap()];
        let listen = "127.0.0.1:8080".parse().unwrap();
        let off = config(Path::new("/tmp/x"), listen, &gateways, Upstream { keepalive: 0 });
        assert!(off.contains("server 127.0.0.1:4001;") && off.contains("server 127.0.0.1:4002;"));
        assert!(!off.contains("keepalive 0"), "{off}");
        let on = config(Path::new("/tmp/x"), listen, &gateways, Upstream { keepalive: 64 });
        assert!(on.contains("keepalive 64;"), "{on}");
    }
}
