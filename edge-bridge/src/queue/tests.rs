use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::Write as _;

use proptest::prelude::*;

use super::*;

fn limits(segment_bytes: u64, max_bytes: u64) -> Limits {
    Limits {
        segment_bytes,
        max_bytes,
    }
}

fn payloads(queue: &Queue) -> Vec<(u64, Vec<u8>)> {
    queue
        .read(0, usize::MAX, usize::MAX)
        .expect("read")
        .into_iter()
        .map(|r| (r.sequence, r.payload))
        .collect()
}

#[test]
fn records_survive_a_restart_in_order_until_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut queue = Queue::open(dir.path(), limits(100, 10_000)).expect("open");
    for n in 0..20u8 {
        assert_eq!(queue.append(&[n; 10]).expect("append"), u64::from(n) + 1);
    }
    assert!(queue.segment_count() > 1, "segments roll over");
    queue.ack(7).expect("ack");
    drop(queue);
    let queue = Queue::open(dir.path(), limits(100, 10_000)).expect("reopen");
    let left = payloads(&queue);
    assert_eq!(left.first().map(|r| r.0), Some(8));
    assert_eq!(left.len(), 13);
    assert_eq!(queue.next_sequence(), 21);
    assert_eq!(queue.read(10, 2, usize::MAX).expect("read").len(), 2);
}

#[test]
fn a_torn_tail_is_cut_and_earlier_damage_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut queue = Queue::open(dir.path(), limits(1 << 20, 1 << 20)).expect("open");
    for n in 0..3u8 {
        queue.append(&[n; 50]).expect("append");
    }
    drop(queue);
    // A crash in the middle of writing a fourth record.
    let segment = segment_path(dir.path(), 1);
    let mut file = OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("segment");
    file.write_all(&encode(4, 0, &[9; 50])[..30])
        .expect("write");
    drop(file);
    let mut queue = Queue::open(dir.path(), limits(1 << 20, 1 << 20)).expect("reopen");
    assert_eq!(queue.repaired_bytes, 30);
    assert_eq!(queue.depth(), 3);
    assert_eq!(queue.append(b"after").expect("append"), 4);
    drop(queue);

    // A flipped bit in a closed segment is not skipped.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut queue = Queue::open(dir.path(), limits(60, 1 << 20)).expect("open");
    for n in 0..4u8 {
        queue.append(&[n; 50]).expect("append");
    }
    drop(queue);
    let first = segment_path(dir.path(), 1);
    let mut bytes = std::fs::read(&first).expect("read");
    bytes[30] ^= 1;
    std::fs::write(&first, bytes).expect("write");
    assert!(matches!(
        Queue::open(dir.path(), limits(60, 1 << 20)),
        Err(QueueError::Corrupt { .. })
    ));
}

#[test]
fn a_full_queue_refuses_and_recovers_when_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = HEADER_BYTES + 100;
    let mut queue = Queue::open(dir.path(), limits(1 << 20, record * 3)).expect("open");
    for _ in 0..3 {
        queue.append(&[1; 100]).expect("append");
    }
    assert!(matches!(
        queue.append(&[1; 100]),
        Err(QueueError::Full { .. })
    ));
    assert_eq!(queue.depth(), 3, "nothing was dropped");
    queue.ack(1).expect("ack");
    assert_eq!(queue.append(&[2; 100]).expect("room again"), 4);
    assert!(matches!(
        queue.append(&vec![0; MAX_PAYLOAD_BYTES + 1]),
        Err(QueueError::TooLarge)
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    /// A group commit of several records.
    AppendAll(Vec<Vec<u8>>),
    Ack(u64),
    Reopen,
    /// A crash while writing a record: only `keep` of its bytes reach disk.
    Crash {
        payload: Vec<u8>,
        keep: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Append),
        2 => proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..30), 1..5)
            .prop_map(Op::AppendAll),
        2 => (0u64..40).prop_map(Op::Ack),
        1 => Just(Op::Reopen),
        1 => (proptest::collection::vec(any::<u8>(), 1..40), 1usize..60)
            .prop_map(|(payload, keep)| Op::Crash { payload, keep }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The queue against a model: a list of unacknowledged records.
    #[test]
    fn behaves_like_its_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let bounds = limits(120, 600);
        let mut queue = Queue::open(dir.path(), bounds).expect("open");
        let mut model: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
        let mut next = 1u64;
        let mut acked = 0u64;
        for op in ops {
            match op {
                Op::Append(payload) => {
                    let used: u64 = model.iter().map(|(_, p)| HEADER_BYTES + p.len() as u64).sum();
                    let result = queue.append(&payload);
                    if used + HEADER_BYTES + payload.len() as u64 > bounds.max_bytes {
                        let refused = matches!(result, Err(QueueError::Full { .. }));
                        prop_assert!(refused, "a full queue must refuse");
                    } else {
                        prop_assert_eq!(result.expect("append"), next);
                        model.push_back((next, payload));
                        next += 1;
                    }
                }
                Op::AppendAll(payloads) => {
                    let used: u64 = model.iter().map(|(_, p)| HEADER_BYTES + p.len() as u64).sum();
                    let adding: u64 = payloads.iter().map(|p| HEADER_BYTES + p.len() as u64).sum();
                    let result = queue.append_all(&payloads);
                    if used + adding > bounds.max_bytes {
                        let refused = matches!(result, Err(QueueError::Full { .. }));
                        prop_assert!(refused, "a group that does not fit is refused whole");
                    } else {
                        prop_assert_eq!(result.expect("append_all"), next..next + payloads.len() as u64);
                        for payload in payloads {
                            model.push_back((next, payload));
                            next += 1;
                        }
                    }
                }
                Op::Ack(upto) => {
                    queue.ack(upto).expect("ack");
                    let upto = upto.min(next - 1);
                    acked = acked.max(upto);
                    model.retain(|(s, _)| *s > acked);
                }
                Op::Reopen => {
                    drop(queue);
                    queue = Queue::open(dir.path(), bounds).expect("reopen");
                }
                Op::Crash { payload, keep } => {
                    // The partial record lands at the end of the last segment.
                    drop(queue);
                    let last = std::fs::read_dir(dir.path())
                        .expect("dir")
                        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(SUFFIX)?.parse::<u64>().ok())
                        .max();
                    let record = encode(next, 0, &payload);
                    let keep = keep.min(record.len() - 1);
                    let path = segment_path(dir.path(), last.unwrap_or(next));
                    let mut file = OpenOptions::new().create(true).append(true).open(path).expect("segment");
                    file.write_all(&record[..keep]).expect("write");
                    drop(file);
                    queue = Queue::open(dir.path(), bounds).expect("reopen after a crash");
                }
            }
            let stored = payloads(&queue);
            let expected: Vec<(u64, Vec<u8>)> = model.iter().cloned().collect();
            prop_assert_eq!(stored, expected);
            prop_assert_eq!(queue.next_sequence(), next);
            prop_assert_eq!(queue.depth(), model.len());
        }
    }
}
