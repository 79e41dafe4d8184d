//! The `config` target: a node's TOML configuration.

use hopluu_node::config::Config;

/// A node's configuration file: TOML parsed into [`Config`] and validated
/// ([`Config::from_toml`], which `hopluu serve --config` runs). Input that
/// is not UTF-8 is skipped (the file is read as a `String`). A valid
/// configuration answers every accessor; its `Debug` form (what the logs
/// show) never holds the database password.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::from_toml(text) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    config
        .validate()
        .expect("a configuration that loaded validates again");
    let _ = config.unit_id();
    let url = config.database_url();
    let debug = format!("{config:?}");
    if url.starts_with("postgres")
        && let Some(redacted) = redacted_url(&url)
    {
        assert!(
            debug.contains(&format!("{redacted:?}")),
            "the Debug form of the configuration shows the database url other than \
             as {redacted:?}: {debug}"
        );
    }
}

/// `scheme://user:***@host…`: the url with its password hidden, where the
/// password is what a url parser reads (the user info ends at the
/// authority's *last* `@`); `None` when the url has no password.
fn redacted_url(url: &str) -> Option<String> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    let colon = userinfo.find(':')?;
    Some(format!(
        "{}{}:***{}",
        &url[..start],
        &userinfo[..colon],
        &rest[at..]
    ))
}
