//! Connecting to the broker, with automatic recovery, and errors that name the
//! broker without leaking its password.

use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

use crate::{Error, Result};

/// How long start-up waits for the broker before giving up with a clear error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects with lapin's automatic recovery on: after a network failure or a
/// broker restart the connection, channels (with their QoS and confirm mode),
/// the declared topology and the consumers are re-established by lapin itself,
/// retrying with a capped exponential backoff for as long as it takes.
pub async fn connect(url: &str, name: &str) -> Result<Connection> {
    let props = ConnectionProperties::default()
        .with_connection_name(name.into())
        .enable_auto_recover()
        .configure_backoff(|b| {
            b.with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(3))
                .without_max_times()
        });
    let shown = crate::redact::url(url);
    let connect = Connection::connect(url, props);
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(Error::Queue {
            message: format!(
                "cannot connect to RabbitMQ at {shown}: {e}. Check that the broker is running \
                 (`rabbitmq-server -detached`), and the user, password and vhost in `amqp_url`"
            ),
            retryable: false,
        }),
        Err(_) => Err(Error::Queue {
            message: format!(
                "cannot connect to RabbitMQ at {shown}: no answer within {CONNECT_TIMEOUT:?}. Check the host and port \
                 in `amqp_url` and that the broker is running (`rabbitmq-server -detached`)"
            ),
            retryable: false,
        }),
    }
}

/// Closes a connection the hub no longer uses (replaced by the watchdog, or
/// opened by an attempt that failed half-way), also when lapin is still
/// recovering it, and returns once it is closed (or `stop` is cancelled).
///
/// Why not just drop it, or call `close` once: lapin does not close a
/// connection whose handle is dropped while it has channels (each channel
/// keeps it alive), and `close` only works while the connection is
/// *connected*. A connection let go while it is reconnecting is left to its IO
/// loop, which goes on retrying, and once the broker is back it re-opens the
/// old channels and re-subscribes the old consumers. Nobody reads those any
/// more, so each would hold up to a prefetch of messages unacked until the
/// process exits: messages the broker handed to it by round robin, wake-ups of
/// a dossier's next delivery among them. That is what stalled dossiers (one
/// message per parking period) when the watchdog replaced a connection just as
/// the broker came back. So this waits for such a connection to come back and
/// closes it then: the broker requeues whatever it received in between.
pub async fn retire(conn: &Connection, stop: &tokio_util::sync::CancellationToken) {
    loop {
        let status = conn.status();
        if status.closed() || status.errored() {
            return;
        }
        if status.connected()
            && matches!(
                tokio::time::timeout(RETIRE_CLOSE_TIMEOUT, conn.close(200, "replaced".into()))
                    .await,
                Ok(Ok(()))
            )
        {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(RETIRE_POLL) => {}
        }
    }
}

/// How long [`retire`] waits for the broker to confirm a close.
const RETIRE_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often [`retire`] looks again at a connection that is still recovering.
const RETIRE_POLL: Duration = Duration::from_millis(250);

/// A broker error during operation (the connection recovers by itself).
pub fn broker_err(context: &str, e: lapin::Error) -> Error {
    Error::Queue {
        message: format!("{context}: {e}"),
        retryable: true,
    }
}
