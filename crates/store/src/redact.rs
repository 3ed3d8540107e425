//! Hiding secrets before a URL or a connection string reaches a log, an error message or a
//! `Debug` output. Every part (the store, the capture points, the notification targets,
//! the binary's configuration) uses these two functions, so they all hide the same things.

/// The text a hidden secret is replaced with.
const HIDDEN: &str = "***";

/// True when a configuration key, URL query parameter or ODBC keyword names something
/// secret (`password`, `PWD`, `api_key`, `signing_secrets`, `X-Auth-Token`...). Errs on the
/// side of hiding: a value hidden needlessly costs a little diagnosis, a leaked one costs
/// a credential.
pub fn is_secret_name(name: &str) -> bool {
    const PARTS: [&str; 13] = [
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "key",
        "signing",
        "signature",
        "auth",
        "credential",
        "cookie",
        "private",
    ];
    let name = name.trim().to_ascii_lowercase();
    PARTS.iter().any(|p| name.contains(p)) || matches!(name.as_str(), "sig" | "pw" | "pass")
}

/// A URL or connection string with its secrets replaced by `***`, for logs, errors and
/// `Debug`:
///
/// - the password of a URL (`postgres://u:***@h/db`; the user name stays, it helps
///   diagnosis and is no secret), also when the URL does not parse (`mysql://u:***@h:99999`);
/// - query parameters with a secret name (`?password=***`, `?api_key=***`);
/// - the secret keywords of an ODBC connection string (`odbc:...;PWD=***`, braced values
///   such as `PWD={a;b}` included).
///
/// Anything else is returned exactly as given (never re-encoded).
pub fn redact_url(url: &str) -> String {
    if url.len() >= 5 && url.is_char_boundary(5) && url[..5].eq_ignore_ascii_case("odbc:") {
        return format!("{}{}", &url[..5], redact_connection_string(&url[5..]));
    }
    match url::Url::parse(url) {
        Ok(mut u) => {
            let mut changed = false;
            if u.password().is_some() {
                let _ = u.set_password(Some(HIDDEN));
                changed = true;
            }
            if let Some(redacted) = u.query().and_then(redact_query) {
                u.set_query(Some(&redacted));
                changed = true;
            }
            // Unchanged URLs are returned as given: re-serialising would normalise them.
            if changed {
                u.to_string()
            } else {
                url.to_owned()
            }
        }
        Err(_) => redact_unparsed(url),
    }
}

/// The query with the values of secret parameters hidden; None when nothing is secret.
fn redact_query(query: &str) -> Option<String> {
    let mut changed = false;
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((raw_key, value)) if !value.is_empty() => {
                let key: String = url::form_urlencoded::parse(raw_key.as_bytes())
                    .next()
                    .map(|(k, _)| k.into_owned())
                    .unwrap_or_default();
                if is_secret_name(&key) {
                    changed = true;
                    format!("{raw_key}={HIDDEN}")
                } else {
                    pair.to_owned()
                }
            }
            _ => pair.to_owned(),
        })
        .collect();
    changed.then(|| parts.join("&"))
}

/// A URL the `url` crate refuses (a bad port, a stray character) may still carry a
/// password: hides the userinfo's password and secret query parameters by hand.
fn redact_unparsed(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|p| p + 3) else {
        return url.to_owned();
    };
    let after = &url[scheme_end..];
    let authority_len = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..authority_len];
    let mut out = url[..scheme_end].to_owned();
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(HIDDEN);
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let rest = &after[authority_len..];
    match rest.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            out.push_str(path);
            out.push('?');
            out.push_str(&redact_query(query).unwrap_or_else(|| query.to_owned()));
            if let Some(f) = fragment {
                out.push('#');
                out.push_str(f);
            }
        }
        None => out.push_str(rest),
    }
    out
}

/// An ODBC connection string (`Key=Value;Key={braced;value}`) with the values of secret
/// keywords hidden and everything else kept as written.
fn redact_connection_string(conn: &str) -> String {
    let mut out = String::with_capacity(conn.len());
    let mut rest = conn;
    while !rest.is_empty() {
        let key_len = rest.find(['=', ';']).unwrap_or(rest.len());
        let key = &rest[..key_len];
        out.push_str(key);
        rest = &rest[key_len..];
        if let Some(r) = rest.strip_prefix(';') {
            out.push(';');
            rest = r;
            continue;
        }
        let Some(r) = rest.strip_prefix('=') else {
            break;
        };
        out.push('=');
        let value_len = odbc_value_len(r);
        if is_secret_name(key) && !r[..value_len].trim().is_empty() {
            out.push_str(HIDDEN);
        } else {
            out.push_str(&r[..value_len]);
        }
        rest = &r[value_len..];
    }
    out
}

/// The length of the value at the start of `v`, up to (not including) the `;` that ends
/// it. A braced value (`{...}`, with `}}` standing for `}`) may contain `;`; an unclosed
/// brace runs to the end, so an unterminated secret is hidden whole.
fn odbc_value_len(v: &str) -> usize {
    let lead = v.len() - v.trim_start().len();
    if !v[lead..].starts_with('{') {
        return v.find(';').unwrap_or(v.len());
    }
    let bytes = v.as_bytes();
    let mut i = lead + 1;
    let close = loop {
        match v[i..].find('}') {
            None => return v.len(),
            Some(p) if bytes.get(i + p + 1) == Some(&b'}') => i += p + 2,
            Some(p) => break i + p + 1,
        }
    };
    close + v[close..].find(';').unwrap_or(v.len() - close)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_hidden_and_users_kept() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_url("https://user:pw@crm.example/worklane"),
            "https://user:***@crm.example/worklane"
        );
    }

    #[test]
    fn urls_without_secrets_come_back_exactly_as_given() {
        for u in [
            "sqlite://cases.db",
            "sqlite:worklane.db?mode=rwc",
            "postgres://worklane@db/worklane?sslmode=require",
            "http://proxy.example:3128",
            "HTTP://Example.COM/a%2fb?x=1&y",
            "not a url at all",
            "",
        ] {
            assert_eq!(redact_url(u), u);
        }
    }

    #[test]
    fn secret_query_parameters_are_hidden() {
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&password=secret"),
            "postgres://u@h/db?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("https://crm.example/hook?api_key=abc&x=1&access%5Ftoken=t0k"),
            "https://crm.example/hook?api_key=***&x=1&access%5Ftoken=***"
        );
        assert_eq!(
            redact_url("mysql://u:p@h/db?ssl-mode=DISABLED"),
            "mysql://u:***@h/db?ssl-mode=DISABLED"
        );
    }

    #[test]
    fn unparsable_urls_still_lose_their_password() {
        assert_eq!(
            redact_url("mysql://u:hunter2@h:99999/db?token=abc#frag"),
            "mysql://u:***@h:99999/db?token=***#frag"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@[bad/db"),
            "postgres://u:***@[bad/db"
        );
        assert_eq!(redact_url("x://h:99999/db"), "x://h:99999/db");
    }

    #[test]
    fn odbc_connection_strings_hide_their_secret_keywords() {
        assert_eq!(
            redact_url("odbc:Driver={PostgreSQL Unicode};Server=h;UID=u;PWD=secret"),
            "odbc:Driver={PostgreSQL Unicode};Server=h;UID=u;PWD=***"
        );
        assert_eq!(
            redact_url("odbc:DSN=crm;UID=u;Password=secret;"),
            "odbc:DSN=crm;UID=u;Password=***;"
        );
        // A braced value may hold `;` and `}}`: all of it is the secret.
        assert_eq!(
            redact_url("odbc:DSN=crm;PWD={se;cr}}et};Server=h"),
            "odbc:DSN=crm;PWD=***;Server=h"
        );
        assert_eq!(
            redact_url("ODBC:DSN=crm;pwd = {open;never closed"),
            "ODBC:DSN=crm;pwd =***"
        );
        // An empty password is shown empty: nothing to hide, and it tells why a login fails.
        assert_eq!(
            redact_url("odbc:Driver={MariaDB Unicode};User=root;Password=;"),
            "odbc:Driver={MariaDB Unicode};User=root;Password=;"
        );
    }

    #[test]
    fn secret_names() {
        for n in [
            "password",
            "PWD",
            "signing_secrets",
            "X-Api-Key",
            "Authorization",
            "access_token",
            "sig",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "url",
            "id",
            "kind",
            "input_queue",
            "uri",
            "sslmode",
            "Server",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }
}
