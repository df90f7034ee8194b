//! The environment of an MCP server agentry starts: a few variables of agentry's own
//! ([`INHERITED_ENV`]) and those its configuration names, nothing else.
//!
//! A server is a program someone else wrote, while agentry's environment holds API keys
//! (`OPENAI_API_KEY`), OAuth client secrets and whatever else its user exported. So, as the
//! official MCP SDKs do (TypeScript's `getDefaultEnvironment`, Python's
//! `get_default_environment`), a stdio server inherits only [`INHERITED_ENV`] (leaving out a
//! value that starts with `()`, a shell function, as they do), plus the variables its
//! [`ServerSpec`](crate::ServerSpec) gives it in `env` (`env = {…}` in `agentry.toml`,
//! `--mcp-env`, `--env`).

use std::collections::BTreeMap;

/// What a stdio server inherits of agentry's environment: the MCP SDKs' list on POSIX
/// (`HOME`, `LOGNAME`, `PATH`, `SHELL`, `TERM`, `USER`), plus the locale (`LANG`,
/// `LC_ALL`, `LC_CTYPE`) and `TMPDIR`, which hold no secrets and keep a server's text
/// encoding and temporary files where the user set them.
pub const INHERITED_ENV: &[&str] = &[
    "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR",
];

/// Clears `command`'s environment, then gives it [`INHERITED_ENV`] from agentry's and `own`.
pub(crate) fn apply(command: &mut tokio::process::Command, own: &BTreeMap<String, String>) {
    command.env_clear();
    for name in INHERITED_ENV {
        if let Some(value) = std::env::var_os(name)
            && !value.as_encoded_bytes().starts_with(b"()")
        {
            command.env(name, value);
        }
    }
    command.envs(own);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_gets_the_inherited_few_and_its_own_variables_only() {
        let mut command = tokio::process::Command::new("true");
        let own = BTreeMap::from([("API_TOKEN".to_owned(), "for this server".to_owned())]);
        apply(&mut command, &own);
        let given: BTreeMap<String, Option<String>> = command
            .as_std()
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        for name in given.keys() {
            assert!(
                INHERITED_ENV.contains(&name.as_str()) || name == "API_TOKEN",
                "{name} was passed on"
            );
        }
        assert_eq!(given["API_TOKEN"].as_deref(), Some("for this server"));
        if let Some(path) = std::env::var_os("PATH") {
            assert_eq!(
                given.get("PATH").cloned().flatten(),
                Some(path.to_string_lossy().into_owned())
            );
        }
    }
}
