//! Helpers shared by the integration tests: what a client does, with
//! psi-core's `Receiver` over the generated gRPC client.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use breach_proto::encoding::Label;
use breach_proto::v1 as pb;
use breach_proto::v1::breach_check_client::BreachCheckClient;
use psi_core::wire::Codec;
use psi_core::{OprfResponse, PsiParams, Query, QueryState, Receiver, ResultPart};
use tonic::transport::Channel;

/// The parameters of the smallest tier of `collection` whose queries hold
/// `items` items, as a client picks them.
pub async fn params(
    client: &mut BreachCheckClient<Channel>,
    collection: pb::Collection,
    items: usize,
) -> PsiParams {
    let resp = client
        .get_parameters(pb::GetParametersRequest {})
        .await
        .unwrap()
        .into_inner();
    let c = resp
        .collections
        .iter()
        .filter(|c| c.collection == collection as i32 && c.max_query_items >= items as u64)
        .min_by_key(|c| c.max_query_items)
        .expect("collection served");
    let p = PsiParams::from_wire(&c.psi_params).unwrap();
    assert_eq!(c.he_params_fingerprint, p.fingerprint().to_vec());
    p
}

/// Runs the OPRF for `items` of `collection` through the server and builds
/// the query for `receiver`'s parameters.
pub async fn build_query(
    client: &mut BreachCheckClient<Channel>,
    collection: pb::Collection,
    receiver: &Receiver,
    items: &[&[u8]],
) -> (Query, QueryState) {
    let (req, pending) = receiver.oprf_request(items).unwrap();
    let resp = client
        .evaluate_oprf(pb::OprfRequest {
            collection: collection as i32,
            blinded_elements: req.elements.iter().map(|e| e.to_vec()).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    let resp = OprfResponse {
        elements: resp
            .evaluated_elements
            .iter()
            .map(|e| e.as_slice().try_into().unwrap())
            .collect(),
    };
    receiver.create_query(pending, &resp).unwrap()
}

/// Runs OPRF + query for `items` of `collection` with `params`; the breach
/// count (label) of each, `None` if not breached.
pub async fn check_with(
    client: &mut BreachCheckClient<Channel>,
    collection: pb::Collection,
    params: PsiParams,
    items: &[[u8; 32]],
) -> Vec<Option<u64>> {
    let receiver = Receiver::new(params).unwrap();
    let refs: Vec<&[u8]> = items.iter().map(|i| i.as_slice()).collect();
    let (query, state) = build_query(client, collection, &receiver, &refs).await;
    let mut stream = client
        .query(pb::QueryRequest {
            username_bucket: None,
            collection: collection as i32,
            query: query.to_wire(),
        })
        .await
        .unwrap()
        .into_inner();
    let parts = read_answer(&mut stream).await;
    receiver
        .decode(&state, &parts)
        .unwrap()
        .into_iter()
        .map(|r| {
            r.matched.then(|| {
                Label::from_bytes(r.label.as_deref().unwrap())
                    .unwrap()
                    .count
            })
        })
        .collect()
}

/// The `breach-server` binary, without the caller's `RUST_LOG`.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_breach-server"));
    cmd.env_remove("RUST_LOG");
    cmd
}

/// A `breach-server serve` child process, killed on drop.
pub struct ServerProcess {
    child: Child,
    /// The address of its `ready on ADDR` line.
    pub addr: String,
    stderr: PathBuf,
}

impl ServerProcess {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `breach-server serve ARGS --listen 127.0.0.1:0`, waiting for `ready on`.
    pub fn start(args: &[&str], stderr: PathBuf) -> Self {
        Self::start_in(args, stderr, Path::new(env!("CARGO_MANIFEST_DIR")))
    }

    /// [`start`](Self::start) in the working directory `cwd`.
    pub fn start_in(args: &[&str], stderr: PathBuf, cwd: &Path) -> Self {
        let mut full = vec!["serve"];
        full.extend(args);
        full.extend(["--listen", "127.0.0.1:0"]);
        Self::spawn(&full, stderr, cwd)
    }

    /// `breach-server ARGS` (whole command line, e.g. with global flags
    /// before `serve`), waiting for `ready on`.
    pub fn spawn(args: &[&str], stderr: PathBuf, cwd: &Path) -> Self {
        let mut cmd = bin();
        cmd.current_dir(cwd).args(args);
        Self::spawn_command(cmd, stderr)
    }

    /// `breach-server serve ARGS --listen 127.0.0.1:0` logging at
    /// `RUST_LOG=rust_log`, waiting for `ready on`.
    pub fn start_logging(args: &[&str], stderr: PathBuf, rust_log: &str) -> Self {
        let mut cmd = bin();
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RUST_LOG", rust_log)
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"]);
        Self::spawn_command(cmd, stderr)
    }

    /// Runs `cmd` (a `breach-server` command line), waiting for `ready on`.
    pub fn spawn_command(mut cmd: Command, stderr: PathBuf) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("breach-server serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("ready on ") {
                        break a.trim().to_string();
                    }
                }
                _ => panic!(
                    "server exited before it was ready: {}",
                    fs::read_to_string(&stderr).unwrap_or_default()
                ),
            }
        };
        assert!(!addr.ends_with(":0"), "real port printed: {addr}");
        Self {
            child,
            addr,
            stderr,
        }
    }

    /// Sends SIGTERM and checks the server exits cleanly.
    pub fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit status {status}");
                return fs::read_to_string(&self.stderr).unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not stop on SIGTERM");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a whole Query answer: its result parts, checking that it ends
/// with the trailer declaring exactly that many and nothing after it.
pub async fn read_answer(stream: &mut tonic::Streaming<pb::QueryResponsePart>) -> Vec<ResultPart> {
    let mut parts = Vec::new();
    let mut trailer = None;
    while let Some(p) = stream.message().await.unwrap() {
        assert!(trailer.is_none(), "nothing follows the trailer");
        match p.trailer {
            Some(t) => trailer = Some(t.parts),
            None => parts.push(ResultPart::from_wire(&p.result_part).unwrap()),
        }
    }
    assert_eq!(
        trailer,
        Some(parts.len() as u32),
        "the answer ends with its trailer"
    );
    parts
}
