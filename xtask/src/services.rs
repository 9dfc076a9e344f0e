//! The nine services: the one table of names, ports and databases, and the environment each
//! one gets locally. Add a service or a variable here and every command picks it up.

use crate::infra::Ports;

/// One service of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// Its short name: directory `services/<name>`, package and binary `<name>-service`.
    pub name: &'static str,
    /// The port it listens on locally.
    pub port: u16,
    /// Its own Postgres database, if it has one.
    pub database: Option<&'static str>,
}

/// Every service, gateway first.
pub const SERVICES: &[Service] = &[
    Service {
        name: "gateway",
        port: 3000,
        database: None,
    },
    Service {
        name: "auth",
        port: 3001,
        database: Some("lomash_auth"),
    },
    Service {
        name: "product",
        port: 3002,
        database: Some("lomash_products"),
    },
    Service {
        name: "order-payment",
        port: 3003,
        database: Some("lomash_orders"),
    },
    Service {
        name: "appointment",
        port: 3004,
        database: Some("lomash_appointments"),
    },
    Service {
        name: "content",
        port: 3005,
        database: Some("lomash_content"),
    },
    Service {
        name: "customer",
        port: 3006,
        database: Some("lomash_customers"),
    },
    Service {
        name: "notification",
        port: 3007,
        database: Some("lomash_notifications"),
    },
    Service {
        name: "analytics",
        port: 3008,
        database: Some("lomash_analytics"),
    },
];

/// The gateway, whose URL `up` prints.
pub const GATEWAY: &str = "gateway";

impl Service {
    /// The Cargo package name, e.g. `order-payment-service`.
    pub fn package(&self) -> String {
        format!("{}-service", self.name)
    }

    /// The binary name (the same as the package).
    pub fn binary(&self) -> String {
        self.package()
    }

    /// Its base URL locally.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment variables it runs with locally (`up`, `migrate`, `--seed`).
    pub fn env(&self, ports: &Ports) -> Vec<(String, String)> {
        let mut env = vec![
            ("PORT".to_owned(), self.port.to_string()),
            ("REDIS_URL".to_owned(), ports.redis_url()),
            ("AMQP_URL".to_owned(), ports.amqp_url()),
            ("LOG_FORMAT".to_owned(), "pretty".to_owned()),
        ];
        if let Some(database) = self.database {
            env.push(("DATABASE_URL".to_owned(), ports.database_url(database)));
        }
        if self.name == GATEWAY {
            for upstream in SERVICES.iter().filter(|s| s.name != GATEWAY) {
                env.push((upstream_var(upstream.name), upstream.url()));
            }
        }
        if self.name == "notification" {
            // Locally every message goes to the `log` provider; this makes them readable at
            // GET /v1/notifications/dev/outbox.
            env.push(("NOTIFICATION_DEV_OUTBOX".to_owned(), "true".to_owned()));
        }
        env
    }
}

/// `order-payment` → `UPSTREAM_ORDER_PAYMENT_URL`.
pub fn upstream_var(name: &str) -> String {
    format!(
        "UPSTREAM_{}_URL",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// The names of all databases to create.
pub fn databases() -> Vec<&'static str> {
    SERVICES.iter().filter_map(|s| s.database).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn by_name(name: &str) -> Option<&'static Service> {
        SERVICES.iter().find(|s| s.name == name)
    }

    fn env_of(name: &str) -> HashMap<String, String> {
        let service = by_name(name).expect("known service");
        service.env(&Ports::default()).into_iter().collect()
    }

    #[test]
    fn the_table_has_nine_services_on_distinct_ports_and_eight_databases() {
        assert_eq!(SERVICES.len(), 9);
        let mut ports: Vec<u16> = SERVICES.iter().map(|s| s.port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports, (3000..=3008).collect::<Vec<_>>());
        assert_eq!(databases().len(), 8);
        assert!(databases().iter().all(|d| d.starts_with("lomash_")));
    }

    #[test]
    fn a_service_with_a_database_gets_its_own_url() {
        let env = env_of("order-payment");
        assert_eq!(env["PORT"], "3003");
        assert_eq!(
            env["DATABASE_URL"],
            "postgres://postgres@127.0.0.1:5432/lomash_orders"
        );
        assert_eq!(env["REDIS_URL"], "redis://127.0.0.1:6379");
        assert_eq!(env["AMQP_URL"], "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(env["LOG_FORMAT"], "pretty");
        assert!(!env.contains_key("UPSTREAM_AUTH_URL"));
    }

    #[test]
    fn the_gateway_knows_every_upstream_and_has_no_database() {
        let env = env_of("gateway");
        assert_eq!(env["PORT"], "3000");
        assert!(!env.contains_key("DATABASE_URL"));
        assert_eq!(env["UPSTREAM_ORDER_PAYMENT_URL"], "http://127.0.0.1:3003");
        assert_eq!(env["UPSTREAM_AUTH_URL"], "http://127.0.0.1:3001");
        assert_eq!(env["UPSTREAM_ANALYTICS_URL"], "http://127.0.0.1:3008");
        assert_eq!(env.keys().filter(|k| k.starts_with("UPSTREAM_")).count(), 8);
    }

    #[test]
    fn locally_notification_keeps_its_messages_readable_and_nobody_else_is_told_to() {
        assert_eq!(env_of("notification")["NOTIFICATION_DEV_OUTBOX"], "true");
        assert!(!env_of("auth").contains_key("NOTIFICATION_DEV_OUTBOX"));
    }

    #[test]
    fn custom_infra_ports_flow_into_the_environment() {
        let ports = Ports {
            postgres: 15432,
            redis: 16379,
            rabbitmq: 15673,
        };
        let service = by_name("auth").expect("known");
        let env: HashMap<String, String> = service.env(&ports).into_iter().collect();
        assert_eq!(
            env["DATABASE_URL"],
            "postgres://postgres@127.0.0.1:15432/lomash_auth"
        );
        assert_eq!(env["REDIS_URL"], "redis://127.0.0.1:16379");
        assert_eq!(env["AMQP_URL"], "amqp://guest:guest@127.0.0.1:15673/%2f");
    }
}
