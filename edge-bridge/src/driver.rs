//! Instrument drivers. Every driver meets the agent through one interface,
//! [`DriverIo`]: it hands readings to the [`Recorder`] (which answers only
//! once they are on disk, or refuses), takes [`Order`]s for its instrument
//! and answers each with a result or a reason, and reports the instrument's
//! status. What differs is how the instrument is reached: simulated, a LAN
//! port or an RS-232 line speaking newline-delimited JSON, or a folder the
//! instrument writes result files into (`filedrop.rs`).

use shared::domain::Timestamp;
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::live::{self, CommandOrder, InstrumentStatus, Item};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Decoder, FramedRead, LinesCodec, LinesCodecError};

use crate::agent::{Cloud, Recorder, Refused, Statuses};
use crate::config::InstrumentConfig;
use crate::simulator::Simulated;

/// A command for the driver, and where its outcome goes.
pub struct Order {
    pub command: CommandOrder,
    pub done: oneshot::Sender<Result<Value, String>>,
}

/// What a driver works with.
pub struct DriverIo {
    pub instrument_id: uuid::Uuid,
    pub recorder: Recorder,
    pub orders: mpsc::Receiver<Order>,
    pub statuses: Statuses,
}

impl DriverIo {
    fn status(&self, status: InstrumentStatus) {
        self.statuses.set(self.instrument_id, status);
    }

    fn reading(&self, metric: &str, value: f64, unit: Option<&str>, at: OffsetDateTime) -> Item {
        Item::Reading(live::Reading {
            instrument_id: self.instrument_id,
            metric: metric.to_owned(),
            value,
            unit: unit.map(str::to_owned),
            recorded_at: at.into(),
        })
    }
}

/// Runs `config`'s driver until the agent stops.
pub async fn run(config: InstrumentConfig, io: DriverIo, cloud: Cloud) {
    match config {
        InstrumentConfig::Simulator {
            kind,
            interval_ms,
            seed,
            fault,
            ..
        } => {
            let seed = seed.unwrap_or_else(|| io.instrument_id.as_u64_pair().0);
            match Simulated::new(&kind, seed) {
                Ok(mut sim) => {
                    sim.inject(fault.map(|f| f.fault()));
                    simulate(sim, Duration::from_millis(interval_ms), io).await;
                }
                Err(e) => tracing::error!(instrument = %io.instrument_id, "{e}"),
            }
        }
        InstrumentConfig::Tcp { address, .. } => {
            let target = address.clone();
            line_instrument(&address, io, move || TcpStream::connect(target.clone())).await;
        }
        InstrumentConfig::FileDrop {
            folder,
            settle_ms,
            format,
            chunk_bytes,
            ..
        } => {
            crate::filedrop::run(
                crate::filedrop::Settings {
                    folder,
                    settle: Duration::from_millis(settle_ms),
                    format,
                    chunk_bytes,
                },
                io,
                cloud,
            )
            .await;
        }
        InstrumentConfig::Serial { path, baud, .. } => {
            let device = path.clone();
            line_instrument(&path, io, move || {
                let device = device.clone();
                async move {
                    tokio_serial::SerialStream::open(&tokio_serial::new(device, baud))
                        .map_err(std::io::Error::from)
                }
            })
            .await;
        }
    }
}

/// A simulated instrument: a sample of every signal each interval; `start`
/// runs for 30 samples (or `settings.durationTicks`), `stop` ends the run,
/// `set_temperature` holds the temperature at `celsius`, the other standard
/// commands complete at once.
async fn simulate(mut sim: Simulated, interval: Duration, mut io: DriverIo) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    io.status(InstrumentStatus::Idle);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let at = OffsetDateTime::now_utc();
                let samples = sim.tick();
                io.status(if samples.is_empty() {
                    InstrumentStatus::Offline
                } else if sim.running() {
                    InstrumentStatus::Running
                } else {
                    InstrumentStatus::Idle
                });
                if samples.is_empty() {
                    continue;
                }
                let items = samples
                    .iter()
                    .map(|s| io.reading(s.metric, s.value, Some(s.unit), at))
                    .collect();
                // A refusal is counted and alarmed by the recorder; a
                // simulated instrument has no one to tell.
                let _ = io.recorder.record(items).await;
            }
            order = io.orders.recv() => {
                let Some(order) = order else { return };
                let outcome = match order.command.command.as_str() {
                    "start" => {
                        let ticks = order.command.parameters
                            .pointer("/settings/durationTicks")
                            .and_then(Value::as_u64)
                            .unwrap_or(30);
                        sim.start_run(u32::try_from(ticks).unwrap_or(u32::MAX));
                        io.status(InstrumentStatus::Running);
                        Ok(json!({ "running": true, "durationTicks": ticks }))
                    }
                    "stop" => {
                        sim.stop_run();
                        io.status(InstrumentStatus::Idle);
                        Ok(json!({ "running": false }))
                    }
                    "pause" | "resume" | "calibrate" | "home" => Ok(json!({ "done": order.command.command })),
                    "set_temperature" => match order.command.parameters.get("celsius").and_then(Value::as_f64) {
                        Some(celsius) if sim.set_setpoint("temperature", celsius) => Ok(json!({ "setpointC": celsius })),
                        _ => Err("set_temperature needs `celsius` and a temperature signal".to_owned()),
                    },
                    other => Err(format!("the simulator does not implement {other}")),
                };
                let _ = order.done.send(outcome);
            }
        }
    }
}

/// A line from a LAN instrument: a reading, or the answer to a command.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    /// The instrument's own id for the reading, echoed in the `ack`.
    id: Option<Value>,
    metric: Option<String>,
    value: Option<f64>,
    unit: Option<String>,
    #[serde(default)]
    recorded_at: Option<Timestamp>,
    command_id: Option<uuid::Uuid>,
    ok: Option<bool>,
    result: Option<Value>,
    error: Option<String>,
}

/// At most this many lines are stored with one write.
const TCP_GROUP: usize = 500;

/// The longest line an instrument may send; a longer one is answered with
/// an error and skipped to its end, so a runaway instrument cannot make the
/// bridge buffer without bound.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Newline-delimited lines of at most [`MAX_LINE_BYTES`]: a line is
/// `Some(text)`, one over the cap `None` (skipped to its end, and the
/// reader goes on). `LinesCodec` with a maximum, minus its error: a
/// decoding error would end the stream.
struct CappedLines(LinesCodec);

impl CappedLines {
    fn new() -> Self {
        CappedLines(LinesCodec::new_with_max_length(MAX_LINE_BYTES))
    }

    fn map(
        decoded: Result<Option<String>, LinesCodecError>,
    ) -> Result<Option<Option<String>>, std::io::Error> {
        match decoded {
            Ok(line) => Ok(line.map(Some)),
            Err(LinesCodecError::MaxLineLengthExceeded) => Ok(Some(None)),
            Err(LinesCodecError::Io(e)) => Err(e),
        }
    }
}

impl Decoder for CappedLines {
    type Item = Option<String>;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        Self::map(self.0.decode(buf))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        Self::map(self.0.decode_eof(buf))
    }
}

/// One read of the line reader: `Some(Some(line))`, `Some(None)` for a line
/// over the cap, `None` when the connection ended or failed.
fn capped(read: Option<Result<Option<String>, std::io::Error>>) -> Option<Option<String>> {
    read?.ok()
}

/// An instrument speaking newline-delimited JSON over a byte stream: a LAN
/// port (TCP) or an RS-232 line (serial). Connects (again and again, with a
/// pause), reads readings `{"id"?, "metric", "value",
/// "unit"?, "recordedAt"?}` and answers each, once it is on disk, with
/// `{"ack": id}` (or `{"nack": id, "error"}` when the queue refuses it).
/// Commands go down as `{"commandId", "command", "parameters"}` and are
/// answered by `{"commandId", "ok", "result"?, "error"?}`.
async fn line_instrument<S, F, Fut>(address: &str, mut io: DriverIo, mut connect: F)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<S>>,
{
    let mut pause = Duration::from_millis(200);
    let mut waiting: std::collections::HashMap<uuid::Uuid, oneshot::Sender<Result<Value, String>>> =
        std::collections::HashMap::new();
    loop {
        let stream = match connect().await {
            Ok(stream) => stream,
            Err(e) => {
                io.status(InstrumentStatus::Offline);
                tracing::debug!(instrument = %io.instrument_id, %address, "cannot connect: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        pause = Duration::from_millis(200);
        tracing::info!(instrument = %io.instrument_id, %address, "instrument connected");
        io.status(InstrumentStatus::Online);
        let (read, mut write) = tokio::io::split(stream);
        let mut lines = FramedRead::new(read, CappedLines::new());
        loop {
            tokio::select! {
                line = lines.next() => {
                    let Some(first) = capped(line) else { break };
                    // Whatever else has already arrived is stored with it.
                    let mut group = vec![first];
                    while group.len() < TCP_GROUP {
                        tokio::select! {
                            biased;
                            next = lines.next() => match capped(next) {
                                Some(line) => group.push(line),
                                None => break,
                            },
                            () = std::future::ready(()) => break,
                        }
                    }
                    let mut items = Vec::new();
                    let mut ids = Vec::new();
                    let mut replies = String::new();
                    for text in group {
                        let Some(text) = text else {
                            let error = format!("line longer than {MAX_LINE_BYTES} bytes: skipped to its end");
                            replies.push_str(&json!({ "error": error }).to_string());
                            replies.push('\n');
                            continue;
                        };
                        let line: Line = match serde_json::from_str(&text) {
                            Ok(line) => line,
                            Err(e) => {
                                replies.push_str(&json!({ "error": format!("not a reading: {e}") }).to_string());
                                replies.push('\n');
                                continue;
                            }
                        };
                        if let Some(command_id) = line.command_id {
                            if let Some(done) = waiting.remove(&command_id) {
                                let outcome = if line.ok == Some(true) {
                                    Ok(line.result.unwrap_or_else(|| json!({})))
                                } else {
                                    Err(line.error.unwrap_or_else(|| "the instrument refused the command".into()))
                                };
                                let _ = done.send(outcome);
                            }
                            continue;
                        }
                        let (Some(metric), Some(value)) = (line.metric, line.value) else {
                            replies.push_str(&json!({ "nack": line.id, "error": "metric and value are required" }).to_string());
                            replies.push('\n');
                            continue;
                        };
                        let item = io.reading(&metric, value, line.unit.as_deref(),
                            line.recorded_at.map_or_else(OffsetDateTime::now_utc, Timestamp::get));
                        if let Item::Reading(r) = &item && let Some(problem) = r.problem() {
                            replies.push_str(&json!({ "nack": line.id, "error": problem }).to_string());
                            replies.push('\n');
                            continue;
                        }
                        items.push(item);
                        ids.push(line.id);
                    }
                    let stored = if items.is_empty() { Ok(0..0) } else { io.recorder.record(items).await };
                    for id in ids {
                        let reply = match &stored {
                            Ok(_) => json!({ "ack": id }),
                            Err(Refused::Full) => json!({ "nack": id, "error": "the bridge's queue is full" }),
                            Err(Refused::Broken(_)) => json!({ "nack": id, "error": "the bridge cannot store readings" }),
                        };
                        replies.push_str(&reply.to_string());
                        replies.push('\n');
                    }
                    if write.write_all(replies.as_bytes()).await.is_err() {
                        break;
                    }
                }
                order = io.orders.recv() => {
                    let Some(order) = order else { return };
                    let line = json!({
                        "commandId": order.command.id,
                        "command": order.command.command,
                        "parameters": order.command.parameters,
                    });
                    if write.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                        let _ = order.done.send(Err("the instrument is not connected".into()));
                        break;
                    }
                    waiting.insert(order.command.id, order.done);
                }
            }
        }
        tracing::warn!(instrument = %io.instrument_id, %address, "instrument disconnected");
        io.status(InstrumentStatus::Offline);
        for (_, done) in waiting.drain() {
            let _ = done.send(Err("the instrument disconnected before answering".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_runaway_line_is_skipped_and_the_next_one_read_whole() {
        let mut input = vec![b'x'; MAX_LINE_BYTES * 3];
        input.extend_from_slice(b"\n{\"metric\":\"temp\",\"value\":1}\n");
        let mut lines = FramedRead::new(&input[..], CappedLines::new());
        assert_eq!(capped(lines.next().await), Some(None), "over the cap");
        assert_eq!(
            capped(lines.next().await),
            Some(Some("{\"metric\":\"temp\",\"value\":1}".to_owned()))
        );
        assert_eq!(capped(lines.next().await), None, "the end");
    }
}
