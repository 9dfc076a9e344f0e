//! Creating the `lomash_*` databases.
//!
//! A few dozen lines of the Postgres wire protocol (startup, simple query, terminate) over a
//! std `TcpStream` keep xtask free of an async runtime and a driver; they are enough for the
//! local servers, which use trust authentication. If a server asks for a password we fall back
//! to `psql`, which knows `PGPASSWORD` and `~/.pgpass`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Outcome of one simple query.
#[derive(Debug, Default)]
struct QueryResult {
    /// The first column of each row (NULL as `None`).
    rows: Vec<Option<String>>,
}

/// A Postgres server error (an `ErrorResponse`).
#[derive(Debug)]
struct ServerError {
    code: String,
    message: String,
}

enum Failure {
    /// The server wants a password (authentication request code).
    NeedsPassword(u32),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::Other(error.into())
    }
}

struct Connection {
    stream: TcpStream,
}

impl Connection {
    fn open(port: u16, user: &str, database: &str) -> Result<Self, Failure> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
            .with_context(|| format!("cannot connect to Postgres on 127.0.0.1:{port}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        let mut connection = Self { stream };
        let mut body = Vec::new();
        body.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
        for (key, value) in [("user", user), ("database", database)] {
            body.extend_from_slice(key.as_bytes());
            body.push(0);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        let len = u32::try_from(body.len() + 4).context("startup message too long")?;
        connection.stream.write_all(&len.to_be_bytes())?;
        connection.stream.write_all(&body)?;
        loop {
            let (kind, payload) = connection.read_message()?;
            match kind {
                b'R' => {
                    let code = be_u32(&payload, 0)?;
                    if code != 0 {
                        return Err(Failure::NeedsPassword(code));
                    }
                }
                b'E' => {
                    let error = parse_error(&payload);
                    return Err(Failure::Other(anyhow::anyhow!(
                        "Postgres refused the connection: {} ({})",
                        error.message,
                        error.code
                    )));
                }
                b'Z' => return Ok(connection),
                _ => {} // ParameterStatus, BackendKeyData, NoticeResponse
            }
        }
    }

    fn read_message(&mut self) -> Result<(u8, Vec<u8>)> {
        let mut header = [0u8; 5];
        self.stream
            .read_exact(&mut header)
            .context("Postgres closed the connection")?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let len = usize::try_from(len)?
            .checked_sub(4)
            .context("malformed Postgres message")?;
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload)?;
        Ok((header[0], payload))
    }

    /// Runs one statement with the simple query protocol.
    fn query(&mut self, sql: &str) -> Result<Result<QueryResult, ServerError>> {
        let len = u32::try_from(sql.len() + 5).context("query too long")?;
        self.stream.write_all(b"Q")?;
        self.stream.write_all(&len.to_be_bytes())?;
        self.stream.write_all(sql.as_bytes())?;
        self.stream.write_all(&[0])?;
        let mut result = QueryResult::default();
        let mut error = None;
        loop {
            let (kind, payload) = self.read_message()?;
            match kind {
                b'D' => result.rows.push(first_column(&payload)?),
                b'E' => error = Some(parse_error(&payload)),
                b'Z' => break,
                _ => {} // RowDescription, CommandComplete, EmptyQueryResponse, NoticeResponse
            }
        }
        Ok(error.map_or(Ok(result), Err))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.stream.write_all(&[b'X', 0, 0, 0, 4]);
    }
}

fn be_u32(bytes: &[u8], at: usize) -> Result<u32> {
    let slice = bytes
        .get(at..at + 4)
        .context("malformed Postgres message")?;
    Ok(u32::from_be_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

fn first_column(payload: &[u8]) -> Result<Option<String>> {
    let columns = payload.get(..2).context("malformed DataRow")?;
    if u16::from_be_bytes([columns[0], columns[1]]) == 0 {
        return Ok(None);
    }
    let len = be_u32(payload, 2)?;
    if len == u32::MAX {
        return Ok(None); // NULL (-1)
    }
    let len = usize::try_from(len)?;
    let value = payload.get(6..6 + len).context("malformed DataRow")?;
    Ok(Some(String::from_utf8_lossy(value).into_owned()))
}

fn parse_error(payload: &[u8]) -> ServerError {
    let mut error = ServerError {
        code: String::new(),
        message: String::new(),
    };
    for field in payload.split(|&b| b == 0) {
        if let Some((&kind, value)) = field.split_first() {
            let value = String::from_utf8_lossy(value).into_owned();
            match kind {
                b'C' => error.code = value,
                b'M' => error.message = value,
                _ => {}
            }
        }
    }
    error
}

/// Whether `name` is safe to splice into SQL as an identifier and a literal.
fn plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Creates each database in `names` that does not exist yet on 127.0.0.1:`port` as `user`.
/// Returns the ones it created.
pub fn ensure_databases(port: u16, user: &str, names: &[&str]) -> Result<Vec<String>> {
    for name in names {
        if !plain_identifier(name) {
            bail!("refusing to create database {name:?}: not a plain identifier");
        }
    }
    match Connection::open(port, user, "postgres") {
        Ok(mut connection) => create_missing(&mut connection, names),
        Err(Failure::NeedsPassword(code)) => ensure_with_psql(port, user, names).with_context(|| {
            format!("Postgres on 127.0.0.1:{port} asks for a password (auth method {code}); fell back to psql")
        }),
        Err(Failure::Other(error)) => Err(error),
    }
}

/// Drops each database in `names` on 127.0.0.1:`port` as `user`, ending its connections
/// (`WITH (FORCE)`, Postgres 13+); a missing one is fine. For throwaway databases such as
/// `fuzz-api`'s, which start empty on every run.
pub fn drop_databases(port: u16, user: &str, names: &[&str]) -> Result<()> {
    for name in names {
        if !plain_identifier(name) {
            bail!("refusing to drop database {name:?}: not a plain identifier");
        }
    }
    let mut connection = match Connection::open(port, user, "postgres") {
        Ok(connection) => connection,
        Err(Failure::NeedsPassword(code)) => {
            bail!("Postgres on 127.0.0.1:{port} asks for a password (auth method {code})")
        }
        Err(Failure::Other(error)) => return Err(error),
    };
    for name in names {
        if let Err(e) =
            connection.query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))?
        {
            bail!("cannot drop database {name}: {} ({})", e.message, e.code);
        }
    }
    Ok(())
}

fn create_missing(connection: &mut Connection, names: &[&str]) -> Result<Vec<String>> {
    let existing = connection
        .query("SELECT datname FROM pg_database")?
        .map_err(|e| anyhow::anyhow!("cannot list databases: {} ({})", e.message, e.code))?;
    let existing: Vec<String> = existing.rows.into_iter().flatten().collect();
    let mut created = Vec::new();
    for name in names {
        if existing.iter().any(|e| e == name) {
            continue;
        }
        match connection.query(&format!("CREATE DATABASE \"{name}\""))? {
            Ok(_) => created.push((*name).to_owned()),
            // Someone else created it between our check and now.
            Err(e) if e.code == "42P04" => {}
            Err(e) => bail!("cannot create database {name}: {} ({})", e.message, e.code),
        }
    }
    Ok(created)
}

fn ensure_with_psql(port: u16, user: &str, names: &[&str]) -> Result<Vec<String>> {
    let port = port.to_string();
    let psql = |sql: &str| -> Result<String> {
        let output = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port, "-U", user, "-d", "postgres"])
            .args(["-v", "ON_ERROR_STOP=1", "-tAc", sql])
            .output()
            .context("cannot run psql (install postgresql-client)")?;
        if !output.status.success() {
            bail!(
                "psql failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let existing = psql("SELECT datname FROM pg_database")?;
    let mut created = Vec::new();
    for name in names {
        if existing.lines().any(|line| line.trim() == *name) {
            continue;
        }
        psql(&format!("CREATE DATABASE \"{name}\""))?;
        created.push((*name).to_owned());
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_accepted() {
        assert!(plain_identifier("lomash_orders"));
        assert!(plain_identifier("db1"));
        assert!(!plain_identifier(""));
        assert!(!plain_identifier("Lomash"));
        assert!(!plain_identifier("x\"; DROP DATABASE y; --"));
        assert!(ensure_databases(1, "postgres", &["bad name"]).is_err());
    }

    #[test]
    fn error_fields_are_parsed() {
        let payload = b"SERROR\0C42P04\0Mdatabase \"x\" already exists\0\0";
        let error = parse_error(payload);
        assert_eq!(error.code, "42P04");
        assert_eq!(error.message, "database \"x\" already exists");
    }

    #[test]
    fn data_rows_yield_their_first_column() {
        let mut row = vec![0, 1, 0, 0, 0, 3];
        row.extend_from_slice(b"abc");
        assert_eq!(first_column(&row).expect("row"), Some("abc".to_owned()));
        let null = [0, 1, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(first_column(&null).expect("row"), None);
        assert!(first_column(&[0, 1, 0, 0, 0, 9, b'a']).is_err());
    }

    /// Talks to the real local server (it is always there on this machine kind and in CI).
    #[test]
    fn creates_a_database_once_against_the_local_server() {
        if !crate::http::port_open(5432) {
            eprintln!("skipped: no Postgres on 127.0.0.1:5432");
            return;
        }
        let name = format!("xtask_selftest_{}", std::process::id());
        let created = ensure_databases(5432, "postgres", &[&name]).expect("first call");
        assert_eq!(created, vec![name.clone()]);
        let again = ensure_databases(5432, "postgres", &[&name]).expect("second call");
        assert!(again.is_empty());
        let Ok(mut connection) = Connection::open(5432, "postgres", "postgres") else {
            panic!("cannot reconnect");
        };
        connection
            .query(&format!("DROP DATABASE \"{name}\""))
            .expect("io")
            .map_err(|e| e.message)
            .expect("dropped");
    }
}
