//! Which plugin-api versions this host accepts.
//!
//! The rule: a plugin built against plugin-api `M.x` loads into a host built against `M.y`, for
//! any `x` and `y`, when `M >= 1` (for `0.m`, the minor must match too). The binary interface is
//! frozen per major version and every other exchange is JSON read tolerantly, so a plugin built
//! against a newer minor loads too; an operation the host does not know answers `unsupported`.

use invhost_plugin_api::API_VERSION;
use semver::Version;

/// Why an `api_version` is not accepted: the message tells the author what to rebuild against.
pub fn check_api_version(plugin_api: &str) -> Result<(), String> {
    let host = Version::parse(API_VERSION).expect("API_VERSION is the crate's semver version");
    let plugin = Version::parse(plugin_api.trim()).map_err(|e| {
        format!("declares plugin-api version `{plugin_api}`, which is not semver ({e}); rebuild it against plugin-api {API_VERSION}")
    })?;
    let compatible = if host.major == 0 {
        plugin.major == 0 && plugin.minor == host.minor
    } else {
        plugin.major == host.major
    };
    if compatible {
        Ok(())
    } else {
        Err(format!(
            "built against an incompatible plugin-api {plugin}; this host supports {}; rebuild it against plugin-api {API_VERSION}",
            supported_range()
        ))
    }
}

/// The accepted range in words (`1.x`).
pub fn supported_range() -> String {
    let host = Version::parse(API_VERSION).expect("API_VERSION is the crate's semver version");
    if host.major == 0 {
        format!("0.{}.x", host.minor)
    } else {
        format!("{}.x", host.major)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_is_accepted_other_majors_are_not() {
        let host = Version::parse(API_VERSION).expect("semver");
        assert_eq!(host.major, 1, "these cases assume a 1.x host");
        for (version, ok) in [
            ("1.0.0", true),
            ("1.7.3", true),
            ("1.2.0-beta.1", true),
            ("2.0.0", false),
            ("0.9.0", false),
            ("one", false),
        ] {
            assert_eq!(check_api_version(version).is_ok(), ok, "{version}");
        }
        let message = check_api_version("2.0.0").expect_err("refused");
        assert!(
            message.contains("rebuild it against plugin-api 1."),
            "{message}"
        );
    }
}
