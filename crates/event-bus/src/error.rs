//! Bus errors.

/// Why a bus operation failed. Broker errors are carried as text: the caller's decision (retry
/// later) does not depend on their detail.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The configuration cannot work.
    #[error("invalid event-bus configuration: {0}")]
    Config(String),
    /// The broker could not be reached or the connection was lost.
    #[error("broker connection failed: {0}")]
    Connection(String),
    /// The broker refused or failed an operation.
    #[error("broker operation failed: {0}")]
    Broker(String),
    /// The broker did not confirm in time.
    #[error("broker did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The broker negatively acknowledged a publish.
    #[error("broker rejected the message (nack)")]
    Nacked,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<lapin::Error> for BusError {
    fn from(error: lapin::Error) -> Self {
        if error.is_io_error() {
            Self::Connection(error.to_string())
        } else {
            Self::Broker(error.to_string())
        }
    }
}
