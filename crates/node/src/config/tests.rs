use super::*;

#[test]
fn minimal_config_gets_defaults() {
    let c = Config::from_toml("[node]\nid = \"hg\"\nunit = \"hau-giang\"\n").unwrap();
    assert_eq!(c.grpc.listen.port(), DEFAULT_PORT);
    assert_eq!(c.roster.bucket_size, 1000);
    assert_eq!(c.database_url(), "sqlite:hopluu-data/hopluu.sqlite");
    assert!(c.limits.enabled);
    assert_eq!((c.limits.requests_per_second, c.limits.burst), (50, 200));
    // A silent link is found within 12 s; a hello may take 30 s.
    let r = &c.replication;
    assert_eq!((r.keepalive_secs, r.keepalive_timeout_secs), (2, 10));
    assert_eq!(r.hello_timeout_secs, 30);
    assert_eq!((c.database.cache_docs, c.database.cache_mib), (10_000, 256));
}

#[test]
fn unknown_keys_are_rejected_with_their_line() {
    let e =
        Config::from_toml("[node]\nid = \"hg\"\nunit = \"hg\"\ncolour = \"red\"\n").unwrap_err();
    let m = e.to_string();
    assert!(m.contains("colour") && m.contains("line 4"), "{m}");
}

#[test]
fn bad_values_name_the_field() {
    for (toml, field) in [
        ("[node]\nid = \"Bad Id\"\nunit = \"hg\"\n", "node.id"),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\nunit_kind = \"planet\"\n",
            "node.unit_kind",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[database]\nurl = \"mysql://x\"\n",
            "database.url",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[database]\ncache_mib = 2000000\n",
            "database.cache_mib",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[roster]\nbucket_size = 0\n",
            "roster.bucket_size",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[log]\nlevel = \"loud\"\n",
            "log.level",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[[replication.upstreams]]\nnode_id = \"vn\"\naddress = \"vn:7400\"\n",
            "replication.upstreams[0].address",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[[replication.upstreams]]\nnode_id = \"hg\"\naddress = \"http://vn:7400\"\n",
            "replication.upstreams[0].node_id",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\nunit_name = \"Hậu Giang\"\nunit_kind = \"provincial\"\n[[replication.upstreams]]\nnode_id = \"vn\"\naddress = \"http://vn:7400\"\n",
            "node.unit_name",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[replication]\nin_flight = 0\n",
            "replication.in_flight",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[replication]\nhello_timeout_secs = 0\n",
            "replication.hello_timeout_secs",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[replication]\nkeepalive_secs = 0\n",
            "replication.keepalive_secs",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[replication]\nkeepalive_timeout_secs = 0\n",
            "replication.keepalive_timeout_secs",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[[replication.upstreams]]\nnode_id = \"vn\"\naddress = \"https://vn:7400\"\n",
            "replication.upstreams[0].address",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[[replication.upstreams]]\nnode_id = \"vn\"\naddress = \"http://vn:7400\"\n[tls]\ncert = \"a\"\nkey = \"b\"\nca = [\"c\"]\n",
            "replication.upstreams[0].address",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[tls]\ncert = \"a\"\nkey = \"b\"\nca = []\n",
            "tls.ca",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[tls]\ncert = \"a\"\nkey = \"b\"\n",
            "ca",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[[replication.children]]\nnode_id = \"X\"\nunit = \"x\"\n",
            "replication.children[0].node_id",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[[replication.children]]\nnode_id = \"x\"\nunit = \"x\"\n[[replication.children]]\nnode_id = \"x\"\nunit = \"y\"\n",
            "replication.children[1].node_id",
        ),
        (
            "[node]\nid = \"hg-\"\nunit = \"hg\"\n[tls]\ncert = \"a\"\nkey = \"b\"\nca = [\"c\"]\n",
            "node.id",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[limits]\nrequests_per_second = 0\n",
            "limits.requests_per_second",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[limits]\nburst = 0\n",
            "limits.burst",
        ),
        (
            "[node]\nid = \"hg\"\nunit = \"hg\"\n[limits]\nmax_callers = 10\n",
            "limits.max_callers",
        ),
    ] {
        let e = Config::from_toml(toml).unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
}

#[test]
fn passwords_are_not_printed() {
    let c = Config::from_toml(
        "[node]\nid = \"vn\"\nunit = \"vn\"\n[database]\nurl = \"postgres://hopluu:s3cret@db/vn\"\n",
    )
    .unwrap();
    let printed = format!("{c:?}");
    assert!(!printed.contains("s3cret"), "{printed}");
    assert!(printed.contains("***"));
}
