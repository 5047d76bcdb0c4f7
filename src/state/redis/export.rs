//! Reads the fleet's feedback stream back for `recserve export-events --from-redis`: every
//! entry's event payload (the event log's own record format), oldest first, in pages of
//! `XRANGE … COUNT`, so a long stream is never held in memory at once. Offline tool: a plain
//! blocking connection, not the serving connection manager.

use super::Keys;
use crate::state::RedisConfig;

const PAGE: usize = 5_000;

/// One `XRANGE` entry: id and field/value pairs.
type Entry = (String, Vec<(String, Vec<u8>)>);

/// The stream's event payloads, oldest first.
pub fn stream_payloads(
    cfg: &RedisConfig,
) -> Result<impl Iterator<Item = Result<Vec<u8>, String>>, String> {
    let client =
        redis::Client::open(cfg.url.as_str()).map_err(|e| format!("state.redis.url: {e}"))?;
    let con = client
        .get_connection_with_timeout(std::time::Duration::from_millis(
            cfg.connect_timeout_ms.max(1),
        ))
        .map_err(|e| format!("redis {}: {e}", cfg.url))?;
    Ok(Pages {
        con,
        key: Keys::new(&cfg.key_prefix).stream(),
        after: None,
        page: Vec::new().into_iter(),
        done: false,
    })
}

struct Pages {
    con: redis::Connection,
    key: String,
    /// The last id read (the next page starts after it).
    after: Option<String>,
    page: std::vec::IntoIter<Vec<u8>>,
    done: bool,
}

impl Iterator for Pages {
    type Item = Result<Vec<u8>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(p) = self.page.next() {
                return Some(Ok(p));
            }
            if self.done {
                return None;
            }
            let start = self
                .after
                .as_ref()
                .map_or("-".to_string(), |id| format!("({id}"));
            let rows: Vec<Entry> = match redis::cmd("XRANGE")
                .arg(&self.key)
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE)
                .query(&mut self.con)
            {
                Ok(r) => r,
                Err(e) => {
                    self.done = true;
                    return Some(Err(format!("reading the stream: {e}")));
                }
            };
            self.done = rows.len() < PAGE;
            self.after = rows.last().map(|(id, _)| id.clone());
            let payloads: Vec<Vec<u8>> = rows
                .into_iter()
                .filter_map(|(_, fields)| {
                    fields
                        .into_iter()
                        .find(|(k, _)| k == "event")
                        .map(|(_, v)| v)
                })
                .collect();
            self.page = payloads.into_iter();
        }
    }
}
