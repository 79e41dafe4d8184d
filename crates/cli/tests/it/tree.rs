//! A running tree of real nodes for the administrator's commands: the
//! national node `vn`, the province `hau-giang` and its district
//! `hg-vi-thanh` (with one grassroots union, `hg-vi-thanh-g1`), each
//! in-process with its store, gRPC server and replication over mutual TLS,
//! each district link through a fault proxy the test can cut. The `hopluu`
//! binary is then run against any of them with an administrator's
//! certificate, as an administrator at that office would.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use hopluu_devcluster::federation::{Federation, NodeSpec};
use hopluu_devcluster::pki::Caller;

use crate::BIN;

pub const VN: &str = "vn";
pub const HG: &str = "hau-giang";
pub const VT: &str = "hg-vi-thanh";
pub const G1: &str = "hg-vi-thanh-g1";

/// How long anything may take to propagate.
pub const LIMIT: Duration = Duration::from_secs(90);

pub struct Tree {
    pub fed: Federation,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tree {
    /// Starts vn → hau-giang → hg-vi-thanh and waits until the district
    /// knows its grassroots union.
    pub async fn start() -> Tree {
        Tree::start_with(|_| {}).await
    }

    /// [`Tree::start`] with every node's configuration adjusted by `tune`.
    pub async fn start_with(
        tune: impl Fn(&mut hopluu_node::config::Config) + Send + Sync + 'static,
    ) -> Tree {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut fed = Federation::new(dir.path()).with_tuning(tune);
        fed.add(NodeSpec::root(VN, VN, "Tổng Liên đoàn Lao động Việt Nam"))
            .await
            .expect("vn starts");
        fed.node(VN)
            .create_unit(HG, "LĐLĐ tỉnh Hậu Giang", "provincial", VN)
            .await
            .expect("the province's record");
        fed.add(NodeSpec::child(HG, HG, &[VN]))
            .await
            .expect("hau-giang starts");
        Federation::until("hau-giang knows its unit", LIMIT, || async {
            Ok(fed.node(HG).knows_unit(HG))
        })
        .await
        .expect("hau-giang syncs");
        let hg = fed.node(HG);
        hg.create_unit(VT, "LĐLĐ thành phố Vị Thanh", "commune", HG)
            .await
            .expect("the district's record");
        hg.create_unit(G1, "CĐCS Trường THPT Vị Thanh", "grassroots", VT)
            .await
            .expect("the grassroots union's record");
        fed.add(NodeSpec::child(VT, VT, &[HG]))
            .await
            .expect("hg-vi-thanh starts");
        Federation::until("hg-vi-thanh knows its grassroots union", LIMIT, || async {
            Ok(fed.node(VT).knows_unit(G1))
        })
        .await
        .expect("hg-vi-thanh syncs");
        // Every node's own record written as it will stand, so that
        // nothing a node writes by itself lands after a test first sees
        // the tree in step (a district wrote its record just after its
        // first `check` said "all in step", and the next said it differs).
        Federation::until("every node has placed its own record", LIMIT, || async {
            for n in fed.nodes() {
                if !n.placed().await? {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await
        .expect("the nodes place their records");
        let pki = fed.pki().expect("the federation's CA");
        let (cert, key) = pki
            .write_client(&Caller::admin())
            .expect("an administrator's certificate");
        let ca = pki.ca_file();
        Tree {
            fed,
            ca,
            cert,
            key,
            _dir: dir,
        }
    }

    /// `hopluu args…` against node `node` as its administrator, not run
    /// yet.
    pub fn command(&self, node: &str, args: &[&str]) -> Command {
        let addr = format!("https://{}", self.fed.node(node).addr);
        let mut cmd = Command::new(BIN);
        cmd.arg("--addr")
            .arg(addr)
            .arg("--ca")
            .arg(&self.ca)
            .arg("--cert")
            .arg(&self.cert)
            .arg("--key")
            .arg(&self.key)
            .args(args)
            .env_remove("HOPLUU_ADDR")
            .env_remove("HOPLUU_CA")
            .env_remove("HOPLUU_CERT")
            .env_remove("HOPLUU_KEY");
        cmd
    }

    /// Runs `hopluu args…` against node `node` as its administrator.
    pub async fn run(&self, node: &str, args: &[&str]) -> Output {
        let mut cmd = self.command(node, args);
        tokio::task::spawn_blocking(move || cmd.output().expect("hopluu runs"))
            .await
            .expect("the command's thread")
    }

    /// Runs `hopluu args…` against `node`; it must succeed. Its stdout.
    pub async fn ok(&self, node: &str, args: &[&str]) -> String {
        let out = self.run(node, args).await;
        assert!(
            out.status.success(),
            "hopluu {args:?} at {node} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs `hopluu --json args…` against `node`; it must succeed. Its
    /// output, parsed.
    pub async fn json(&self, node: &str, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(node, &all).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// Runs `hopluu args…` against `node`; it must fail. Its stderr.
    pub async fn fails(&self, node: &str, args: &[&str]) -> String {
        let out = self.run(node, args).await;
        assert!(
            !out.status.success(),
            "hopluu {args:?} at {node} should have failed"
        );
        String::from_utf8(out.stderr).expect("UTF-8 output")
    }

    pub async fn shutdown(self) {
        self.fed.shutdown().await.expect("the nodes stop");
    }
}
