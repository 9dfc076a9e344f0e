//! Removing a bus's RabbitMQ topology: test teardown and decommissioning a prefix.

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

use std::time::Duration;

use crate::{BusConfig, BusError};

/// The [`BusConfig::queue_expiry`] for throwaway topologies (tests, benchmarks): long enough that
/// no test leaves its queue unconsumed that long, short enough that few idle quorum queues are
/// alive at once (with 5 min, ~300 were, and the shared broker stalled publishes and queue
/// declarations for over 5 s at a time during a full test run).
pub const THROWAWAY_QUEUE_EXPIRY: Duration = Duration::from_secs(60);

/// Deletes the queues (and dead-letter queues) of `services` and the bus's exchanges. Queues or
/// exchanges that do not exist are skipped. RabbitMQ only; other backends are left alone.
///
/// When the config sets a [`BusConfig::queue_expiry`], the services' quorum queues are left for
/// the broker to expire (only their classic dead-letter queues are deleted): deleting freshly
/// made quorum queues by the hundred is what destabilised RabbitMQ in test runs.
pub async fn delete_rabbit_topology(config: &BusConfig, services: &[&str]) -> Result<(), BusError> {
    if config.backend != crate::BackendKind::RabbitMq {
        return Ok(());
    }
    let connection =
        lapin::Connection::connect(&config.amqp_url, lapin::ConnectionProperties::default())
            .await
            .map_err(BusError::from)?;
    let queues = services.iter().flat_map(|s| {
        let quorum = config.queue_expiry.is_none().then(|| config.queue_name(s));
        quorum.into_iter().chain([config.dead_letter_queue_name(s)])
    });
    for queue in queues {
        // A failed delete closes the channel, so each gets its own.
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    for exchange in [config.exchange.clone(), config.dead_letter_exchange()] {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = connection.close(200, "bye".into()).await;
    Ok(())
}
