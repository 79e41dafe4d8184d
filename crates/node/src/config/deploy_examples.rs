use super::*;

/// Every example configuration in deploy/ parses and validates, so the
/// examples cannot rot.
#[test]
fn every_example_config_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy/ exists") {
        let path = entry.expect("readable").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let c = Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!c.node.id.is_empty());
            // Every example serves mutual TLS.
            assert!(c.tls.is_some(), "{}: no [tls]", path.display());
            seen += 1;
        }
    }
    assert!(
        seen >= 3,
        "expected the national, province and district examples, found {seen}"
    );
    let national = Config::load(&dir.join("national.toml")).unwrap();
    assert!(national.database_url().starts_with("postgres://"));
    let district = Config::load(&dir.join("district.toml")).unwrap();
    assert_eq!(
        district.database_url(),
        "sqlite:/var/lib/hopluu/hopluu.sqlite"
    );
}

#[test]
fn the_systemd_unit_runs_serve_with_a_config() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/hopluu.service"),
    )
    .expect("deploy/hopluu.service exists");
    assert!(unit.contains("ExecStart=/usr/local/bin/hopluu serve --config /etc/hopluu/node.toml"));
}
