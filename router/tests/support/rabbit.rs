//! A RabbitMQ vhost of a test's (or benchmark's) own, created on demand and
//! deleted on drop, even when the test panics; shared by the queue contract
//! suite, the scale-out fault tests and the RabbitMQ benchmark.
#![allow(dead_code)]

use std::process::Command;

const AMQP_BASE: &str = "amqp://guest:guest@127.0.0.1:5672";

/// Runs `rabbitmqctl`; the error says how to start the broker.
pub fn rabbitmqctl(args: &[&str]) -> Result<(), String> {
    rabbitmqctl_output(args).map(drop)
}

/// Runs `rabbitmqctl` and returns what it printed; the error says how to start
/// the broker.
pub fn rabbitmqctl_output(args: &[&str]) -> Result<String, String> {
    let out = Command::new("rabbitmqctl").args(args).output().map_err(|e| {
        format!("cannot run rabbitmqctl ({e}); install RabbitMQ and start it with `rabbitmq-server -detached`")
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "rabbitmqctl {args:?} failed: {}{}\nIs RabbitMQ running? Start it with `rabbitmq-server -detached`",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

pub struct Vhost {
    pub name: String,
}

impl Vhost {
    /// Creates `lt_<tag>_<random>` with full rights for `guest`; panics with how
    /// to start RabbitMQ if it is down.
    pub fn create(tag: &str) -> Vhost {
        let name = format!(
            "lt_{tag}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        rabbitmqctl(&["add_vhost", &name]).unwrap_or_else(|e| panic!("{e}"));
        let v = Vhost { name };
        rabbitmqctl(&["set_permissions", "-p", &v.name, "guest", ".*", ".*", ".*"])
            .unwrap_or_else(|e| panic!("{e}"));
        v
    }

    /// `amqp://guest:guest@127.0.0.1:5672/<vhost>`.
    pub fn url(&self) -> String {
        format!("{AMQP_BASE}/{}", self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = rabbitmqctl(&["delete_vhost", &self.name]);
    }
}
