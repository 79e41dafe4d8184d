//! `hopluu cert` making a CA and certificates, and `hopluu serve` on the
//! files it wrote (mutual TLS, plaintext only when told).

use super::*;

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

/// A reader that went away (`hopluu … | head`) ends the command quietly
/// with the status of a Unix tool killed by SIGPIPE (141), not with a
/// panic and a backtrace. The pipe's read end is closed before the
/// command writes anything, so its first line meets a closed pipe.
#[test]
fn a_closed_pipe_on_stdout_ends_the_command_quietly() {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("pki");
    let mut child = std::process::Command::new(BIN)
        .args(["cert", "ca", "--out", s(&dir)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .env("RUST_BACKTRACE", "1")
        .spawn()
        .expect("hopluu runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("hopluu ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
    // It did its work before it printed.
    assert!(dir.join("ca.pem").exists());
}
