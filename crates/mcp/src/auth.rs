//! MCP authorization (OAuth 2.1) for servers reached over Streamable HTTP: when a server
//! answers 401 (or 403 for a scope it wants), agentry discovers its authorization server
//! (protected resource metadata, then authorization server metadata), registers (a
//! pre-registered client, a client metadata document, or dynamic registration), sends the
//! user's browser to the authorization URL with PKCE, takes the code on a one-shot
//! listener at `http://127.0.0.1:PORT/callback`, and exchanges it for a token. The
//! protocol work is `rmcp`'s; agentry supplies the browser step and the listener.

use std::time::Duration;

use std::path::PathBuf;

use rmcp::transport::auth::{
    AuthClient, AuthError, AuthorizationManager, AuthorizationRequest, ClientCredentialsConfig,
    CredentialStore, OAuthState, StoredCredentials,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// The HTTP client under the authorized transport.
pub(crate) type Authorized = AuthClient<reqwest13::Client>;

/// How agentry authorizes itself to servers that ask for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuthOptions {
    /// A client id registered with the authorization server beforehand.
    pub client_id: Option<String>,
    /// Its secret, for a confidential client.
    pub client_secret: Option<String>,
    /// The URL of agentry's client metadata document, used as the client id where the
    /// authorization server supports that.
    pub client_metadata_url: Option<String>,
    /// The program that opens the authorization URL (given as its last argument); `None`
    /// hands the URL to [`OAuthOptions::show`] for the user to open.
    pub browser: Option<Vec<String>>,
    /// Shows the user the authorization URL when there is no browser program (the CLI
    /// prints it); by default it goes to the log (`tracing`, warn level).
    pub show: ShowAddress,
    /// Authorize as the client itself (the `client_credentials` grant, with the client id
    /// and secret) rather than on behalf of a user in a browser: for unattended agents.
    pub client_credentials: bool,
    /// Where tokens are kept between runs, one file per server (readable by the user
    /// only); `None` keeps them in memory for this run.
    pub store: Option<PathBuf>,
}

/// Shows the user an address to open ([`OAuthOptions::show`]).
#[derive(Clone, Default)]
pub struct ShowAddress(Option<std::sync::Arc<Show>>);

type Show = dyn Fn(&str) + Send + Sync;

impl ShowAddress {
    /// Shows addresses through `show`.
    pub fn new(show: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Some(std::sync::Arc::new(show)))
    }

    fn show(&self, address: &str) {
        match &self.0 {
            Some(show) => show(address),
            None => tracing::warn!(%address, "open this address to authorize the MCP server"),
        }
    }
}

impl std::fmt::Debug for ShowAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ShowAddress(callback)"
        } else {
            "ShowAddress(log)"
        })
    }
}

/// Two are equal when they are the same callback (or both the log).
impl PartialEq for ShowAddress {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for ShowAddress {}

/// How long the user has to approve in the browser.
const APPROVAL_WINDOW: Duration = Duration::from_secs(300);

impl OAuthOptions {
    /// From `AGENTRY_OAUTH_CLIENT_ID`, `AGENTRY_OAUTH_CLIENT_SECRET`,
    /// `AGENTRY_OAUTH_CLIENT_METADATA_URL`, `AGENTRY_OAUTH_GRANT` (`client_credentials`
    /// for [`OAuthOptions::client_credentials`]), `AGENTRY_OAUTH_DIR` (where tokens are
    /// kept; default `$XDG_CONFIG_HOME/agentry/oauth` or `~/.config/agentry/oauth`, empty
    /// for none) and `BROWSER` (a command line).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            client_id: var("AGENTRY_OAUTH_CLIENT_ID"),
            client_secret: var("AGENTRY_OAUTH_CLIENT_SECRET"),
            client_metadata_url: var("AGENTRY_OAUTH_CLIENT_METADATA_URL"),
            browser: var("BROWSER").map(|b| b.split_whitespace().map(str::to_owned).collect()),
            show: ShowAddress::default(),
            client_credentials: var("AGENTRY_OAUTH_GRANT").as_deref() == Some("client_credentials"),
            store: match std::env::var_os("AGENTRY_OAUTH_DIR") {
                Some(dir) if dir.is_empty() => None,
                Some(dir) => Some(PathBuf::from(dir)),
                None => std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
                    .map(|c| c.join("agentry/oauth")),
            },
        }
    }
}

/// Runs the authorization flow against the server at `url`, answering `challenge` (its
/// `WWW-Authenticate` header), and returns an HTTP client that sends the token.
pub(crate) async fn authorize(
    url: &str,
    challenge: &str,
    options: &OAuthOptions,
) -> Result<Authorized, String> {
    let failed = |e: rmcp::transport::auth::AuthError| format!("authorization failed: {e}");
    if options.client_credentials {
        let (Some(client_id), Some(client_secret)) = (&options.client_id, &options.client_secret)
        else {
            return Err("the client_credentials grant needs AGENTRY_OAUTH_CLIENT_ID and AGENTRY_OAUTH_CLIENT_SECRET".into());
        };
        let mut state = OAuthState::Unauthorized(manager(url, options).await.map_err(failed)?);
        let grant = ClientCredentialsConfig::ClientSecret {
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            scopes: Vec::new(),
            resource: Some(url.to_owned()),
        };
        state
            .authenticate_client_credentials(grant)
            .await
            .map_err(failed)?;
        let manager = state
            .into_authorization_manager()
            .ok_or("the authorization did not complete")?;
        return Ok(AuthClient::new(reqwest13::Client::default(), manager));
    }
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("cannot listen for the authorization callback: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let mut request = AuthorizationRequest::new(&redirect)
        .with_client_name("agentry")
        .with_challenge(challenge);
    if let Some(id) = &options.client_id {
        request = request.with_preregistered_client(id);
    }
    if let Some(secret) = &options.client_secret {
        request = request.with_client_secret(secret);
    }
    if let Some(doc) = &options.client_metadata_url {
        request = request.with_client_metadata_url(doc);
    }
    let mut state = OAuthState::Unauthorized(manager(url, options).await.map_err(failed)?);
    state.start_authorization(request).await.map_err(failed)?;
    let address = state.get_authorization_url().await.map_err(failed)?;
    open(&address, options)?;
    let callback = tokio::time::timeout(APPROVAL_WINDOW, callback(&listener, port))
        .await
        .map_err(|_| "no authorization arrived within 5 minutes".to_owned())??;
    state.handle_callback_url(&callback).await.map_err(failed)?;
    let manager = state
        .into_authorization_manager()
        .ok_or("the authorization did not complete")?;
    Ok(AuthClient::new(reqwest13::Client::default(), manager))
}

/// An authorization manager for the server at `url` that keeps its tokens where
/// `options` says.
async fn manager(url: &str, options: &OAuthOptions) -> Result<AuthorizationManager, AuthError> {
    let mut manager = AuthorizationManager::new(url).await?;
    if let Some(dir) = &options.store {
        manager.set_credential_store(FileStore::for_server(dir, url));
    }
    Ok(manager)
}

/// The tokens kept from an earlier run for the server at `url`, as an authorized client
/// (refreshed when they expire); `None` when there are none.
pub(crate) async fn remembered(url: &str, options: &OAuthOptions) -> Option<Authorized> {
    let dir = options.store.as_ref()?;
    if !FileStore::for_server(dir, url).path.exists() {
        return None;
    }
    let mut manager = manager(url, options).await.ok()?;
    match manager.initialize_from_store().await {
        Ok(true) => Some(AuthClient::new(reqwest13::Client::default(), manager)),
        _ => None,
    }
}

/// Tokens in a file of their own per server, readable by the user only.
struct FileStore {
    path: PathBuf,
}

impl FileStore {
    fn for_server(dir: &std::path::Path, url: &str) -> Self {
        let name: String = url
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Self {
            path: dir.join(format!("{name}.json")),
        }
    }
}

#[async_trait::async_trait]
impl CredentialStore for FileStore {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        match tokio::fs::read(&self.path).await {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AuthError::CredentialStoreError(format!(
                "{}: {e}",
                self.path.display()
            ))),
        }
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        let failed = |e: std::io::Error| {
            AuthError::CredentialStoreError(format!("{}: {e}", self.path.display()))
        };
        let json = serde_json::to_vec(&credentials)
            .map_err(|e| AuthError::CredentialStoreError(e.to_string()))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        use std::{io::Write, os::unix::fs::OpenOptionsExt};
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(failed)?;
        file.write_all(&json).map_err(failed)?;
        std::fs::rename(&tmp, &self.path).map_err(failed)
    }

    async fn clear(&self) -> Result<(), AuthError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(
                AuthError::CredentialStoreError(format!("{}: {e}", self.path.display())),
            ),
            _ => Ok(()),
        }
    }
}

/// Sends the user to `address`: through the browser program when there is one, else by
/// showing it.
fn open(address: &str, options: &OAuthOptions) -> Result<(), String> {
    match options.browser.as_deref() {
        Some([program, args @ ..]) => {
            std::process::Command::new(program)
                .args(args)
                .arg(address)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start the browser `{program}`: {e}"))?;
        }
        _ => options.show.show(address),
    }
    Ok(())
}

/// Waits for the browser's request to `/callback` and returns its full URL.
async fn callback(listener: &TcpListener, port: u16) -> Result<String, String> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut head = vec![0u8; 8192];
        let n = stream.read(&mut head).await.unwrap_or(0);
        let text = String::from_utf8_lossy(&head[..n]);
        let target = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("GET "))
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_default()
            .to_owned();
        // Only the browser sent here by name (127.0.0.1), not a page re-pointing its own name
        // at this machine (DNS rebinding).
        let loopback = agentry_core::AllowedHosts::for_bind(std::net::Ipv4Addr::LOCALHOST.into());
        let host_ok = text
            .lines()
            .skip(1)
            .take_while(|line| !line.is_empty())
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("host"))
            .is_some_and(|(_, value)| loopback.allows(value.trim()));
        let answered = host_ok && target.starts_with("/callback?");
        let (status, body) = if !host_ok {
            ("403 Forbidden", "not for this host")
        } else if answered {
            ("200 OK", "agentry is authorized; you can close this page.")
        } else {
            ("404 Not Found", "not here")
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(reply.as_bytes()).await;
        if answered {
            return Ok(format!("http://127.0.0.1:{port}{target}"));
        }
    }
}

/// The `WWW-Authenticate` challenge somewhere in `error`'s chain of causes: the server
/// wants a token (401) or a wider scope (403).
pub(crate) fn challenge(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rmcp::transport::streamable_http_client::{AuthRequiredError, InsufficientScopeError};
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(a) = e.downcast_ref::<AuthRequiredError>() {
            return Some(a.www_authenticate_header.clone());
        }
        if let Some(s) = e.downcast_ref::<InsufficientScopeError>() {
            return Some(s.www_authenticate_header.clone());
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_kept_per_server_in_a_file_only_the_user_reads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("agentry-oauth-{}", std::process::id()));
        let a = FileStore::for_server(&dir, "https://a.example/mcp");
        let b = FileStore::for_server(&dir, "https://b.example/mcp");
        assert_ne!(a.path, b.path);
        assert!(a.load().await.unwrap().is_none());
        a.save(StoredCredentials::new(
            "client-1".into(),
            None,
            vec!["read".into()],
            Some(7),
        ))
        .await
        .unwrap();
        let back = a.load().await.unwrap().unwrap();
        assert_eq!(back.client_id, "client-1");
        assert_eq!(back.granted_scopes, ["read"]);
        let mode = std::fs::metadata(&a.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(b.load().await.unwrap().is_none());
        a.clear().await.unwrap();
        assert!(a.load().await.unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_browser_the_address_goes_to_the_callers_show_not_to_stderr() {
        let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let keep = std::sync::Arc::clone(&shown);
        let options = OAuthOptions {
            show: ShowAddress::new(move |a| keep.lock().unwrap().push(a.to_owned())),
            ..OAuthOptions::default()
        };
        open("https://auth.example/authorize?x=1", &options).unwrap();
        assert_eq!(
            *shown.lock().unwrap(),
            vec!["https://auth.example/authorize?x=1".to_owned()]
        );
        assert_eq!(options.clone(), options);
        assert_ne!(options, OAuthOptions::default());
    }
}
