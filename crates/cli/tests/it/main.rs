//! The `hopluu` binary end to end: a real `hopluu serve` process on
//! loopback, over mutual TLS with certificates made by `hopluu cert`,
//! driven by the CLI as an office clerk would.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

mod admin;
mod conflicts;
mod docs;
mod edges;
mod tree;

const BIN: &str = env!("CARGO_BIN_EXE_hopluu");

/// Runs `hopluu` with `args` (and none of the caller's HOPLUU_ settings).
fn hopluu(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("HOPLUU_ADDR")
        .env_remove("HOPLUU_CA")
        .env_remove("HOPLUU_CERT")
        .env_remove("HOPLUU_KEY")
        .output()
        .expect("hopluu runs")
}

/// Runs `hopluu` with `args`; it must succeed. Returns stdout.
fn hopluu_ok(args: &[&str]) -> String {
    let out = hopluu(args);
    assert!(
        out.status.success(),
        "hopluu {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `hopluu` with `args`; it must fail. Returns stderr.
fn hopluu_fails(args: &[&str]) -> String {
    let out = hopluu(args);
    assert!(!out.status.success(), "hopluu {args:?} should have failed");
    String::from_utf8(out.stderr).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// A CA, node vn's certificate (for 127.0.0.1) and an admin's, made with
/// `hopluu cert` in `dir`.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make(dir: &Path) -> Certs {
        let d = s(dir);
        hopluu_ok(&["cert", "ca", "--out", d]);
        hopluu_ok(&[
            "cert",
            "node",
            "--ca",
            d,
            "--node-id",
            "vn",
            "--unit",
            "vn",
            "--ip",
            "127.0.0.1",
            "--out",
            d,
        ]);
        hopluu_ok(&["cert", "admin", "--ca", d, "--name", "admin", "--out", d]);
        Certs {
            dir: dir.to_owned(),
        }
    }

    fn file(&self, name: &str) -> String {
        s(&self.dir.join(name)).to_owned()
    }

    /// `hopluu serve`'s TLS flags for node vn.
    fn serve_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.file("vn.pem"),
            "--tls-key".into(),
            self.file("vn.key"),
            "--tls-ca".into(),
            self.file("ca.pem"),
        ]
    }

    /// The client flags for the admin.
    fn client_args(&self) -> Vec<String> {
        vec![
            "--ca".into(),
            self.file("ca.pem"),
            "--cert".into(),
            self.file("admin.pem"),
            "--key".into(),
            self.file("admin.key"),
        ]
    }
}

struct Node {
    child: Child,
    addr: String,
    certs: Certs,
    _dir: tempfile::TempDir,
}

impl Node {
    /// The embedded default: the national node, which holds no personal
    /// data.
    fn start() -> Node {
        Node::start_with("")
    }

    /// Node vn with a node.toml that ends with `toml` (a `[replication]`
    /// section, say); `""` serves the embedded default.
    fn start_with(toml: &str) -> Node {
        let dir = tempfile::TempDir::new().unwrap();
        let certs = Certs::make(&dir.path().join("pki"));
        let data = dir.path().join("data");
        let place: Vec<String> = if toml.is_empty() {
            vec!["--data-dir".into(), s(&data).into()]
        } else {
            let file = dir.path().join("node.toml");
            std::fs::write(
                &file,
                format!(
                    "[node]\nid = \"vn\"\nunit = \"vn\"\n\
                     unit_name = \"Tổng Liên đoàn Lao động Việt Nam\"\n\
                     unit_kind = \"central\"\ndata_dir = {:?}\n\n{toml}",
                    s(&data)
                ),
            )
            .unwrap();
            vec!["--config".into(), s(&file).into()]
        };
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(place)
            .args(certs.serve_args())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("hopluu serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        assert!(line.contains("listening on"), "{line}");
        Node {
            child,
            addr: format!("https://{addr}"),
            certs,
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--addr")
            .arg(&self.addr)
            .args(self.certs.client_args())
            .args(args)
            .output()
            .expect("hopluu runs")
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hopluu {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "hopluu {args:?} should have failed");
        String::from_utf8(out.stderr).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("--json prints JSON")
    }

    /// Stops the node with SIGTERM, as systemd does; it must exit cleanly.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "node exited with {exit}");
    }
}

fn build_tree(node: &Node) {
    node.ok(&[
        "units",
        "create",
        "--id",
        "hau-giang",
        "--name",
        "LĐLĐ tỉnh Hậu Giang",
        "--kind",
        "provincial",
        "--parent",
        "vn",
    ]);
    node.ok(&[
        "units",
        "create",
        "--id",
        "hg-truong-a",
        "--name",
        "CĐCS Trường THCS Hòa Bình",
        "--kind",
        "grassroots",
        "--parent",
        "hau-giang",
    ]);
}

/// A node that holds private data (CCCD, ethnicity, religion) at every
/// depth: one office's own node. The national node of [`Node::start`]
/// refuses them.
const HOLDS_PRIVATE: &str = "[replication]\nprivate_depth = 0\n";

#[test]
fn a_clerk_adds_a_unit_and_a_member_and_reads_the_report() {
    let node = Node::start_with(HOLDS_PRIVATE);
    let status = node.ok(&["status"]);
    assert!(
        status.contains("Tổng Liên đoàn Lao động Việt Nam"),
        "{status}"
    );
    build_tree(&node);
    let listed = node.ok(&["units", "list"]);
    assert!(
        listed.contains("hau-giang") && listed.contains("CĐCS Trường THCS Hòa Bình"),
        "{listed}"
    );

    let added = node.json(&[
        "members",
        "add",
        "--unit",
        "hg-truong-a",
        "--name",
        "Nguyễn Văn An",
        "--birth-date",
        "1990-03-15",
        "--gender",
        "male",
        "--card",
        "HG-0001",
        "--joined-on",
        "2015-05-01",
        "--national-id",
        "001090012345",
    ]);
    assert_eq!(added["status"], "MEMBER_STATUS_ACTIVE");
    let id = added["id"].as_str().unwrap().to_owned();

    // Bad input: the field and the reason, a failing exit code, nothing written.
    let before = node.json(&["status"])["feed_position"].clone();
    let err = node.fails(&[
        "members",
        "add",
        "--unit",
        "hg-truong-a",
        "--name",
        "Trần Thị Bình",
        "--birth-date",
        "1992-01-01",
        "--gender",
        "female",
        "--card",
        "HG-0002",
        "--joined-on",
        "2016-01-01",
        "--national-id",
        "12345",
    ]);
    assert!(
        err.contains("national_id: must be exactly 12 digits"),
        "{err}"
    );
    let err = node.fails(&[
        "members",
        "add",
        "--unit",
        "hg-truong-a",
        "--name",
        "Lê Văn Cường",
        "--birth-date",
        "1990-01-01",
        "--gender",
        "male",
        "--card",
        "HG-0001",
        "--joined-on",
        "2016-01-01",
    ]);
    assert!(
        err.contains("card_number") && err.contains("already held"),
        "{err}"
    );
    assert_eq!(node.json(&["status"])["feed_position"], before);

    let shown = node.json(&["members", "show", &id, "--private"]);
    assert_eq!(shown["private"]["national_id"], "001090012345");
    let found = node.ok(&["members", "find", "nguyen van an"]);
    assert!(found.contains("Nguyễn Văn An"), "{found}");

    let report = node.json(&["report", "members"]);
    assert_eq!(report["total"]["active"], "1");
    let table = node.ok(&["report", "members"]);
    assert!(table.contains("LĐLĐ tỉnh Hậu Giang"), "{table}");
    node.stop();
}

#[test]
fn import_reports_bad_rows_by_line_and_is_idempotent() {
    let node = Node::start_with(HOLDS_PRIVATE);
    build_tree(&node);
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("danh-sach.csv");
    std::fs::write(
        &file,
        "DANH SÁCH ĐOÀN VIÊN CÔNG ĐOÀN CƠ SỞ TRƯỜNG THCS HÒA BÌNH\n\
         STT;Họ và tên;Ngày sinh;Giới tính;Số thẻ đoàn viên;Ngày vào công đoàn;Chức vụ;Số CCCD\n\
         1;Nguyễn Văn An;15/03/1990;Nam;HB-0001;01/05/2015;Tổ trưởng;001090012345\n\
         2;Trần Thị Bình;02/11/1988;Nữ;HB-0002;01/09/2012;Giáo viên;\n\
         3;Lê Văn Cường;31/02/1985;Nam;HB-0003;01/05/2015;;\n\
         4;Phạm Thị Dung;01/01/1995;Nữ;HB-0004;01/05/2015;;12345\n\
         5;Hoàng Văn Em;01/01/1995;Nam;HB-0002;01/05/2016;;\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = node.ok(&["import", "members", path, "--unit", "hg-truong-a"]);
    assert!(
        out.contains("5 rows: 2 created, 0 updated, 0 unchanged, 3 rejected"),
        "{out}"
    );
    // Line numbers as the clerk sees them (title and header count).
    assert!(
        out.lines()
            .any(|l| l.starts_with("5 ") && l.contains("birth_date")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("6 ") && l.contains("national_id")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("7 ") && l.contains("card_number") && l.contains("line 4")),
        "{out}"
    );

    // Re-running the same file changes nothing.
    let again = node.ok(&["import", "members", path, "--unit", "hg-truong-a"]);
    assert!(
        again.contains("0 created, 0 updated, 2 unchanged, 3 rejected"),
        "{again}"
    );
    let listed = node.json(&["members", "list", "--unit", "hg-truong-a"]);
    assert_eq!(listed["total"], "2");

    // A file without a unit column needs --unit.
    let err = node.fails(&["import", "members", path]);
    assert!(err.contains("--unit"), "{err}");
    node.stop();
}

#[test]
fn the_national_node_refuses_personal_data() {
    let node = Node::start();
    build_tree(&node);
    let before = node.json(&["status"])["feed_position"].clone();
    let err = node.fails(&[
        "members",
        "add",
        "--unit",
        "hg-truong-a",
        "--name",
        "Nguyễn Văn An",
        "--birth-date",
        "1990-03-15",
        "--gender",
        "male",
        "--card",
        "HG-0001",
        "--joined-on",
        "2015-05-01",
        "--national-id",
        "001090012345",
    ]);
    assert!(
        err.contains(
            "national_id: this node (depth 0) does not hold personal data; private_depth is 1"
        ),
        "{err}"
    );
    // A roster with a CCCD column: refused whole, naming the first line.
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("danh-sach.csv");
    std::fs::write(
        &file,
        "STT;Họ và tên;Ngày sinh;Giới tính;Số thẻ đoàn viên;Ngày vào công đoàn;Số CCCD\n\
         1;Trần Thị Bình;02/11/1988;Nữ;HB-0002;01/09/2012;\n\
         2;Nguyễn Văn An;15/03/1990;Nam;HB-0001;01/05/2015;001090012345\n",
    )
    .unwrap();
    let err = node.fails(&["import", "members", s(&file), "--unit", "hg-truong-a"]);
    assert!(
        err.contains("national_id: this node (depth 0) does not hold personal data")
            && err.contains("Line 3 carries it"),
        "{err}"
    );
    assert!(!err.contains("001090012345"), "{err}");
    assert_eq!(node.json(&["status"])["feed_position"], before);
    node.stop();
}

#[test]
fn a_member_is_deidentified_on_request() {
    let node = Node::start_with(HOLDS_PRIVATE);
    build_tree(&node);
    node.ok(&[
        "members",
        "add",
        "--unit",
        "hg-truong-a",
        "--name",
        "Nguyễn Văn An",
        "--birth-date",
        "1990-03-15",
        "--gender",
        "male",
        "--card",
        "HG-0001",
        "--joined-on",
        "2015-05-01",
        "--position",
        "Tổ trưởng",
        "--national-id",
        "001090012345",
        "--ethnicity",
        "Kinh",
    ]);
    let out = node.ok(&[
        "members",
        "deidentify",
        "HG-0001",
        "--reason",
        "Đơn đề nghị của đoàn viên",
        "--reference",
        "15/ĐN",
    ]);
    assert!(out.contains("(de-identified)"), "{out}");
    assert!(out.contains("Đơn đề nghị của đoàn viên 15/ĐN"), "{out}");
    assert!(out.contains("hg-truong-a"), "{out}");
    for gone in ["Nguyễn Văn An", "1990-03-15", "Tổ trưởng", "001090012345"] {
        assert!(!out.contains(gone), "{gone} in {out}");
    }
    let shown = node.json(&["members", "show", "--card", "HG-0001", "--private"]);
    assert_eq!(shown["full_name"], "(de-identified)");
    assert_eq!(shown["card_number"], "HG-0001");
    assert!(shown.get("private").is_none(), "{shown}");
    assert_eq!(shown["deidentified"]["reference"], "15/ĐN");
    let found = node.ok(&["members", "find", "nguyen van an"]);
    assert!(!found.contains("Nguyễn Văn An"), "{found}");
    // Once is enough: a second request is refused, nothing written.
    let before = node.json(&["status"])["feed_position"].clone();
    let err = node.fails(&["members", "deidentify", "HG-0001", "--reason", "lần hai"]);
    assert!(err.contains("was de-identified already"), "{err}");
    assert_eq!(node.json(&["status"])["feed_position"], before);
    let report = node.json(&["report", "members"]);
    assert_eq!(report["total"]["active"], "1", "still counted");
    node.stop();
}

#[test]
fn the_binary_explains_an_unreachable_node() {
    let err = hopluu_fails(&[
        "--insecure-plaintext",
        "--addr",
        "http://127.0.0.1:9",
        "status",
    ]);
    assert!(err.contains("cannot reach the node"), "{err}");
    // Plaintext is not tried without the flag, nor TLS without a
    // certificate.
    let err = hopluu_fails(&["--addr", "http://127.0.0.1:9", "status"]);
    assert!(
        err.contains("--addr") && err.contains("plaintext") && err.contains("--insecure-plaintext"),
        "{err}"
    );
    let err = hopluu_fails(&["--addr", "https://127.0.0.1:9", "status"]);
    assert!(err.contains("--ca"), "{err}");
}

#[test]
fn hopluu_cert_makes_a_ca_and_certificates_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("pki");
    let d = s(&dir);
    let out = hopluu_ok(&[
        "cert",
        "ca",
        "--out",
        d,
        "--name",
        "CĐ Việt Nam CA",
        "--days",
        "30",
    ]);
    assert!(out.contains("ca.pem") && out.contains("ca.key"), "{out}");
    let mode = |f: &str| std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("ca.key"), 0o600);
    assert!(
        std::fs::read_to_string(dir.join("ca.pem"))
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );

    let out = hopluu_ok(&[
        "cert",
        "node",
        "--ca",
        d,
        "--node-id",
        "hau-giang",
        "--unit",
        "hau-giang",
        "--dns",
        "hau-giang.congdoan.vn",
        "--ip",
        "10.0.0.5",
        "--out",
        d,
    ]);
    assert!(
        out.contains("urn:hopluu:node:hau-giang:hau-giang")
            && out.contains("hau-giang.node.hopluu")
            && out.contains("hau-giang.congdoan.vn")
            && out.contains("10.0.0.5")
            && out.contains("[tls]")
            && out.contains("[[replication.children]]"),
        "{out}"
    );
    assert_eq!(mode("hau-giang.key"), 0o600);
    let out = hopluu_ok(&[
        "cert",
        "admin",
        "--ca",
        d,
        "--name",
        "nguyen.an",
        "--out",
        d,
    ]);
    assert!(
        out.contains("urn:hopluu:admin:nguyen.an") && out.contains("HOPLUU_CERT"),
        "{out}"
    );
    let out = hopluu_ok(&[
        "cert",
        "staff",
        "--ca",
        &format!("{d}/ca.pem"),
        "--name",
        "clerk-1",
        "--unit",
        "hg-truong-a",
        "--out",
        d,
    ]);
    assert!(
        out.contains("urn:hopluu:staff:clerk-1:hg-truong-a"),
        "{out}"
    );
    for f in [
        "ca.pem",
        "ca.key",
        "hau-giang.pem",
        "nguyen.an.pem",
        "clerk-1.key",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }

    // Nothing is overwritten.
    let before = std::fs::read(dir.join("ca.key")).unwrap();
    let err = hopluu_fails(&["cert", "ca", "--out", d]);
    assert!(
        err.contains("--out") && err.contains("already exists"),
        "{err}"
    );
    let err = hopluu_fails(&[
        "cert",
        "admin",
        "--ca",
        d,
        "--name",
        "nguyen.an",
        "--out",
        d,
    ]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(dir.join("ca.key")).unwrap(), before);

    // Bad arguments are named.
    let err = hopluu_fails(&[
        "cert",
        "node",
        "--ca",
        d,
        "--node-id",
        "Hậu Giang",
        "--unit",
        "hg",
        "--out",
        d,
    ]);
    assert!(err.contains("--node-id"), "{err}");
    let err = hopluu_fails(&[
        "cert",
        "admin",
        "--ca",
        d,
        "--name",
        "Nguyễn An",
        "--out",
        d,
    ]);
    assert!(err.contains("--name"), "{err}");
    let err = hopluu_fails(&["cert", "admin", "--name", "x", "--out", d]);
    assert!(err.contains("--ca"), "{err}");
    let err = hopluu_fails(&[
        "cert",
        "admin",
        "--ca",
        s(&tmp.path().join("nope")),
        "--name",
        "x",
        "--out",
        d,
    ]);
    assert!(err.contains("--ca") && err.contains("cannot read"), "{err}");
    let err = hopluu_fails(&[
        "cert",
        "ca",
        "--out",
        s(&tmp.path().join("b")),
        "--days",
        "0",
    ]);
    assert!(err.contains("--days"), "{err}");
}

#[test]
fn serve_runs_on_hopluu_cert_files_and_refuses_plaintext_unless_told() {
    let tmp = tempfile::TempDir::new().unwrap();
    // No TLS, no flag: refused before anything starts, saying what to do.
    let err = hopluu_fails(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        s(&tmp.path().join("plain")),
    ]);
    assert!(
        err.contains("tls") && err.contains("--insecure-plaintext") && err.contains("hopluu cert"),
        "{err}"
    );
    assert!(!tmp.path().join("plain").join("hopluu.sqlite").exists());
    // A certificate of another node is refused, naming the setting.
    let certs = Certs::make(&tmp.path().join("pki"));
    hopluu_ok(&[
        "cert",
        "node",
        "--ca",
        &certs.file(""),
        "--node-id",
        "lc",
        "--unit",
        "lai-chau",
        "--out",
        &certs.file(""),
    ]);
    let err = hopluu_fails(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        s(&tmp.path().join("x")),
        "--tls-cert",
        &certs.file("lc.pem"),
        "--tls-key",
        &certs.file("lc.key"),
        "--tls-ca",
        &certs.file("ca.pem"),
    ]);
    assert!(err.contains("tls.cert") && err.contains("lc"), "{err}");

    // --insecure-plaintext serves, and only plaintext clients that say so
    // talk to it.
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--insecure-plaintext",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(tmp.path().join("dev"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_owned();
    let plain = format!("http://{addr}");
    let status = hopluu_ok(&["--insecure-plaintext", "--addr", &plain, "status"]);
    assert!(status.contains("vn"), "{status}");
    let err = hopluu_fails(&["--addr", &plain, "status"]);
    assert!(err.contains("--insecure-plaintext"), "{err}");
    let mut tls = vec!["--addr".to_owned(), format!("https://{addr}")];
    tls.extend(certs.client_args());
    tls.push("status".into());
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    hopluu_fails(&tls);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut warned = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut warned).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(
        warned.contains("WARNING") && warned.contains("without TLS"),
        "{warned}"
    );

    // The TLS node: the admin's certificate gets in; a staff certificate
    // from another CA does not.
    let node = Node::start();
    assert!(
        node.ok(&["status"])
            .contains("Tổng Liên đoàn Lao động Việt Nam")
    );
    let other = tmp.path().join("other");
    let o = s(&other);
    hopluu_ok(&["cert", "ca", "--out", o]);
    hopluu_ok(&["cert", "admin", "--ca", o, "--name", "intruder", "--out", o]);
    let err = hopluu_fails(&[
        "--addr",
        &node.addr,
        "--ca",
        &node.certs.file("ca.pem"),
        "--cert",
        &format!("{o}/intruder.pem"),
        "--key",
        &format!("{o}/intruder.key"),
        "status",
    ]);
    assert!(err.contains("error"), "{err}");
    node.stop();
}

#[test]
fn bench_sync_prints_latency_wire_and_aggregation_figures() {
    let out = Command::new(BIN)
        .args([
            "bench-sync",
            "--edits",
            "10",
            "--wire-edits",
            "2",
            "--burst",
            "5",
            "--batch-edits",
            "20",
            "--members",
            "300",
            "--provinces",
            "2",
            "--communes",
            "1",
            "--grassroots",
            "2",
            "--import-batch",
            "100",
            "--national",
            "sqlite",
        ])
        .env("RUST_LOG", "error")
        .output()
        .expect("hopluu runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench-sync failed: {stderr}\n{stdout}"
    );
    // The machine facts and the exact parameters.
    assert!(stdout.contains("cores"), "{stdout}");
    assert!(stdout.contains("--members 300 --provinces 2"), "{stdout}");
    // 1. Latency: every measured line has its edit count and percentiles.
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stdout}"))
            .to_owned()
    };
    let national = line("district -> national committed");
    let cells: Vec<&str> = national.split_whitespace().collect();
    assert!(cells.contains(&"10"), "10 edits timed: {national}");
    assert_eq!(
        national.matches(" ms").count(),
        4,
        "p50, p90, p99 and max: {national}"
    );
    assert!(line("floor: local commit at the district (AddMember").contains(" ms"));
    assert!(line("district -> province committed").contains(" ms"));
    assert!(
        stdout.contains("aim district -> national: p50 <= 5 ms"),
        "{stdout}"
    );
    // 2. Bytes on the wire: a warm edit crosses both links both ways.
    let warm = line("warm UpdateMember");
    let bytes: Vec<u64> = warm
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect();
    // edits, d->p up, d->p down, p->n up, p->n down, ...
    assert!(bytes.len() >= 5, "{warm}");
    assert_eq!(bytes[0], 2, "{warm}");
    assert!(
        bytes[1..5].iter().all(|b| *b > 0),
        "bytes in every direction of both links: {warm}"
    );
    assert!(line("5 UpdateMember at once").contains(" ms"));
    assert!(line("one ImportMembers updating 20 positions").contains(" ms"));
    assert!(
        stdout.contains("aim: a warm single edit <= 600 B"),
        "{stdout}"
    );
    // 3. Initial aggregation: all members counted at the national node,
    // with a rate and its peak RSS.
    let agg = line("300 ");
    assert!(agg.contains("MiB"), "peak RSS read from /proc: {agg}");
    assert!(agg.contains(" s"), "{agg}");
    assert!(stdout.contains("members/s"), "{stdout}");
}

/// `hopluu demo` as a user runs it: a federation on loopback, a province
/// cut off from the national node while both sides write, then healed. The
/// national count must miss the cut province's new members while the link
/// is down and hold every member after healing; the data stays on disk.
#[test]
fn the_demo_cuts_a_province_off_and_converges_after_healing() {
    use std::io::Read;
    use std::time::{Duration, Instant};

    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("demo");
    let mut child = Command::new(BIN)
        .args(["demo", "--members", "300", "--data-dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hopluu demo starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            pipe.read_to_string(&mut s).unwrap();
            s
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "hopluu demo did not finish within 240 s; output so far:\n{}\n{}",
                stdout.join().unwrap(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = stdout.join().unwrap();
    let err = stderr.join().unwrap();
    assert!(
        status.success(),
        "hopluu demo failed ({status}):\n{out}\n{err}"
    );

    for name in [
        "Liên đoàn Lao động tỉnh Hậu Giang",
        "Liên đoàn Lao động tỉnh Lai Châu",
        "Liên đoàn Lao động tỉnh Kiên Giang",
    ] {
        assert!(out.contains(name), "{name} missing:\n{out}");
    }
    // The sections, in order.
    let section = |title: &str| -> &str {
        let start = out
            .find(&format!("== {title}"))
            .unwrap_or_else(|| panic!("no section {title:?}:\n{out}"));
        let rest = &out[start + 3..];
        &rest[..rest.find("\n== ").unwrap_or(rest.len())]
    };
    let before = section("before");
    let during = section("while kien-giang is cut off");
    let after = section("after");
    assert!(
        out.find("== before") < out.find("== while") && out.find("== while") < out.find("== after"),
        "{out}"
    );

    // "national members: N (created so far: M)", once per section.
    let national = |s: &str| -> (u64, u64) {
        let line = s
            .lines()
            .find(|l| l.starts_with("national members: "))
            .unwrap_or_else(|| panic!("no national count in:\n{s}"));
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|w| !w.is_empty())
            .map(|w| w.parse().unwrap())
            .collect();
        assert_eq!(numbers.len(), 2, "{line}");
        (numbers[0], numbers[1])
    };
    let (seen_before, created_before) = national(before);
    let (seen_during, created_during) = national(during);
    let (seen_after, created_after) = national(after);
    assert_eq!((seen_before, created_before), (300, 300), "{before}");
    assert!(created_during > created_before, "{during}");
    assert_eq!(
        seen_during, seen_before,
        "vn saw members written below the cut link:\n{during}"
    );
    assert_eq!(created_after, created_during, "{after}");
    assert_eq!(
        seen_after, created_after,
        "vn lacks members after healing:\n{after}"
    );

    // Kiên Giang's row of the national members report: the active count.
    let kien_giang = |s: &str| -> u64 {
        let line = s
            .lines()
            .find(|l| l.starts_with("kien-giang  "))
            .unwrap_or_else(|| panic!("no kien-giang row in:\n{s}"));
        let cells: Vec<&str> = line
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        cells[2].parse().unwrap_or_else(|_| panic!("{line}"))
    };
    assert_eq!(kien_giang(during), kien_giang(before), "{during}");
    assert_eq!(
        kien_giang(after),
        kien_giang(before) + (created_during - created_before),
        "{after}"
    );

    // The link table: the cut link down while cut, every link in step after.
    let link = |s: &str, name: &str| -> String {
        s.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no link {name} in:\n{s}"))
            .to_owned()
    };
    assert!(link(during, "kien-giang -> vn").contains("CUT"), "{during}");
    assert!(during.contains("6 of 7 links in step"), "{during}");
    assert!(!link(after, "kien-giang -> vn").contains("CUT"), "{after}");
    assert!(after.contains("7 of 7 links in step"), "{after}");
    // `hopluu check` on every link after healing: one line each, every
    // child against its parent, each comparing documents and all in step.
    let checks: Vec<&str> = after
        .lines()
        .map(str::trim)
        .filter(|l| l.contains(" documents compared, "))
        .collect();
    assert_eq!(checks.len(), 7, "{after}");
    for l in &checks {
        assert!(l.ends_with(", all in step"), "{after}");
        let compared: u64 = l
            .split(": ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{l}"));
        assert!(compared > 0, "{l}");
    }
    assert!(
        checks.iter().any(|l| l.starts_with("kien-giang and vn: ")),
        "{after}"
    );

    for node in ["vn", "hau-giang", "lai-chau", "kien-giang", "kg-phu-quoc"] {
        let db = dir.join(node).join("hopluu.sqlite");
        assert!(db.is_file(), "{} missing", db.display());
        let toml = std::fs::read_to_string(dir.join(node).join("node.toml")).unwrap();
        assert!(toml.contains("[tls]"), "{toml}");
        assert!(dir.join("pki").join(format!("{node}.pem")).is_file());
    }
    // The command line's certificate, and how to use it.
    assert!(dir.join("pki/admin.pem").is_file() && dir.join("pki/admin.key").is_file());
    assert!(out.contains("export HOPLUU_CA="), "{out}");

    // The directory is not reused without --fresh.
    let again = Command::new(BIN)
        .args(["demo", "--members", "300", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("not empty") && err.contains("--fresh"),
        "{err}"
    );
}
