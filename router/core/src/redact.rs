//! Connection URLs fit for logs and error messages.
//!
//! The store's URL (`store.url`) and the broker's (`queue.rabbitmq.url`) both
//! carry a password in their userinfo, and both are named in log lines and in
//! the errors start-up prints. They go through this one function, which sits
//! below both the store and the queue so neither has to import the other.
//!
//! The userinfo ends at the *last* `@` of the authority (before the first `/`):
//! a password may itself contain `@` (`u:p@a@db`), and an `@` in the path or
//! the query is not userinfo at all.

/// `scheme://user:***@host/...`: the URL with its password masked; a URL
/// without a password (or without `scheme://`) is returned as it is.
pub fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{masked}@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            url("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            url("postgres://u:p@a@db/x?sslmode=disable"),
            "postgres://u:***@db/x?sslmode=disable"
        );
        assert_eq!(url("amqp://127.0.0.1"), "amqp://127.0.0.1");
        assert_eq!(url("amqp://user@host/v"), "amqp://user@host/v");
    }

    /// What the hub's own copy (`server::hub::redact`, now gone) got wrong: it
    /// split at the first `@`, leaking the rest of a password with an `@`, and
    /// took an `@` in the query for the end of the userinfo.
    #[test]
    fn the_userinfo_ends_at_the_authoritys_last_at() {
        assert_eq!(
            url("postgres://app:p@ss@db:5432/lienthong"),
            "postgres://app:***@db:5432/lienthong"
        );
        assert_eq!(
            url("postgres://db:5432/lienthong?user=a@b"),
            "postgres://db:5432/lienthong?user=a@b"
        );
        assert_eq!(
            url("sqlite:///var/lib/lienthong/lienthong.db?mode=rwc"),
            "sqlite:///var/lib/lienthong/lienthong.db?mode=rwc"
        );
        assert_eq!(url("not a url"), "not a url");
    }
}
