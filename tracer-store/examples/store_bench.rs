//! Store benchmarks, run by `cargo xtask bench`:
//! - `write N`: events per second one core writes into a segment
//!   (dd-like syscall events with one-byte buffers, batches of 8192).
//! - `query N PIDS`: builds a store of N events from PIDS processes (batched
//!   per process, as the daemon does), then times listing the store and
//!   reading one process's events back.
//!
//! Prints `key=value` lines for xtask to show.
use std::time::Instant;

use tracer_proto as pb;
use tracer_store::{
    segment::SegmentWriter,
    store::{self, Query},
};

fn event(seq: u64, pid: u32) -> pb::Event {
    let read = seq.is_multiple_of(2);
    pb::Event {
        ts_ns: 1_000_000_000 + seq * 250,
        pid,
        tid: pid,
        comm: "dd".into(),
        cgroup_id: 1,
        seq,
        kind: Some(pb::event::Kind::Syscall(pb::Syscall {
            nr: if read { 0 } else { 1 },
            name: if read { "read" } else { "write" }.into(),
            args: vec![if read { 0 } else { 1 }, 0x5555_5555_0000, 1, 0, 0, 0],
            ret: 1,
            enter_ns: 1_000_000_000 + seq * 250 - 120,
            exit_ns: 1_000_000_000 + seq * 250,
            buffers: vec![pb::Buffer {
                arg: 1,
                direction: if read { 2 } else { 1 },
                data: vec![0],
                total_len: 1,
                ..Default::default()
            }],
            ..Default::default()
        })),
        ..Default::default()
    }
}

const BATCH: u64 = 8192;
const SEGMENT_BYTES: u64 = 64 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let dir = tempfile::tempdir()?;
    match args.first().map(String::as_str) {
        Some("write") => {
            let batches: Vec<Vec<pb::Event>> = (0..n / BATCH)
                .map(|b| (b * BATCH..(b + 1) * BATCH).map(|s| event(s, 7)).collect())
                .collect();
            let mut w =
                SegmentWriter::create(&store::segment_path(dir.path(), 1), &Default::default())?;
            let started = Instant::now();
            for b in &batches {
                w.append(b, 3)?;
            }
            w.close()?;
            let secs = started.elapsed().as_secs_f64();
            let bytes = std::fs::metadata(store::segment_path(dir.path(), 1))?.len();
            println!("events={}", batches.len() as u64 * BATCH);
            println!(
                "events_per_s={:.0}",
                (batches.len() as u64 * BATCH) as f64 / secs
            );
            println!(
                "bytes_per_event={:.2}",
                bytes as f64 / (batches.len() as u64 * BATCH) as f64
            );
        }
        Some("query") => {
            let pids: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
            let mut seq = 1u64;
            let mut next = 1u64;
            let mut w =
                SegmentWriter::create(&store::segment_path(dir.path(), next), &Default::default())?;
            let mut b = 0u64;
            while seq < n {
                let pid = 1000 + (b % pids as u64) as u32;
                let batch: Vec<pb::Event> = (0..BATCH).map(|i| event(seq + i, pid)).collect();
                seq += BATCH;
                b += 1;
                w.append(&batch, 3)?;
                if w.len() >= SEGMENT_BYTES {
                    w.close()?;
                    next += 1;
                    w = SegmentWriter::create(
                        &store::segment_path(dir.path(), next),
                        &Default::default(),
                    )?;
                }
            }
            w.close()?;
            let started = Instant::now();
            let segments = store::list(dir.path())?;
            let listed = started.elapsed().as_secs_f64();
            let r = store::query(
                dir.path(),
                &Query {
                    pids: vec![1042],
                    ..Default::default()
                },
            )?;
            let total = started.elapsed().as_secs_f64();
            println!("events={}", seq - 1);
            println!("segments={}", segments.len());
            println!("process_events={}", r.events.len());
            println!("list_ms={:.1}", listed * 1e3);
            println!("query_ms={:.1}", total * 1e3);
        }
        _ => return Err("usage: store_bench write N | query N PIDS".into()),
    }
    Ok(())
}
