//! A Garage of a test's own, for the tests that stop the photo store mid-way: the
//! shared one that `scripts/test.sh` starts must stay up for every other test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use server::config::S3Config;

use crate::helpers::services_required;

/// A single-node Garage in a temporary directory, stoppable and restartable.
pub struct OwnGarage {
    bin: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    pub s3: S3Config,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn cli(bin: &PathBuf, config: &PathBuf, args: &[&str]) -> Result<String, String> {
    let out = Command::new(bin)
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

impl OwnGarage {
    /// Starts one, or `None` (skip) outside `scripts/test.sh` when no binary is known.
    pub async fn start() -> Option<OwnGarage> {
        let bin = match std::env::var("DONGHANH_TEST_GARAGE_BIN") {
            Ok(b) => PathBuf::from(b),
            Err(_) if services_required() => {
                panic!("DONGHANH_TEST_GARAGE_BIN is not set: run the tests with scripts/test.sh")
            }
            Err(_) => return None,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
metadata_fsync = false
data_fsync = false
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
"#,
                d = dir.path().display()
            ),
        )
        .expect("garage config");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let mut garage = OwnGarage {
            bin,
            config,
            child: None,
            s3: S3Config {
                endpoint: Some(format!("http://127.0.0.1:{s3_port}")),
                region: "garage".into(),
                bucket: "photos".into(),
                access_key_id: String::new(),
                secret_access_key: String::new().into(),
                force_path_style: true,
                prefix: String::new(),
            },
            _dir: dir,
        };
        garage.resume().await;
        let node = cli(&garage.bin, &garage.config, &["node", "id", "-q"]).expect("node id");
        let node = node
            .trim()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string();
        cli(
            &garage.bin,
            &garage.config,
            &["layout", "assign", "-z", "dc1", "-c", "1G", &node],
        )
        .expect("layout assign");
        cli(
            &garage.bin,
            &garage.config,
            &["layout", "apply", "--version", "1"],
        )
        .expect("layout apply");
        cli(&garage.bin, &garage.config, &["bucket", "create", "photos"]).expect("bucket");
        let key = cli(
            &garage.bin,
            &garage.config,
            &["key", "create", "photos-key"],
        )
        .expect("key");
        let field = |name: &str| {
            key.lines()
                .find(|l| l.contains(name))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {name} in {key}"))
        };
        garage.s3.access_key_id = field("Key ID");
        garage.s3.secret_access_key = field("Secret key").into();
        cli(
            &garage.bin,
            &garage.config,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                "photos",
                "--key",
                "photos-key",
            ],
        )
        .expect("bucket allow");
        Some(garage)
    }

    /// Starts (again) on the same data, and waits until it answers.
    pub async fn resume(&mut self) {
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start garage");
        self.child = Some(child);
        for _ in 0..150 {
            if cli(&self.bin, &self.config, &["status"]).is_ok() {
                // The S3 port opens with the RPC one; make sure before going on.
                if let Some(endpoint) = &self.s3.endpoint {
                    let addr = endpoint.trim_start_matches("http://");
                    if tokio::net::TcpStream::connect(addr).await.is_ok() {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("garage did not start");
    }

    /// Stops it, as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnGarage {
    fn drop(&mut self) {
        self.stop();
    }
}
