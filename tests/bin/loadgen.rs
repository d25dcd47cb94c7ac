//! `loadgen`: an intake load generator. N workers POST distinct `outreach_visit` v1
//! submissions to `/api/v1/submissions` for S seconds, as fast as the server answers,
//! and one JSON line sums it up:
//!
//! `{"concurrency":N,"phones":P,"duration_s":..,"accepted":..,"errors":..,"per_sec":..,"p50_ms":..,"p99_ms":..,"max_ms":..}`
//!
//! `201 Created` counts as accepted; any other answer, or a request that fails in
//! transport, counts as an error (the first few error bodies go to stderr). Latency is
//! measured per request (send to last body byte); the percentiles are over accepted
//! requests. `per_sec` is accepted submissions over the wall time until the last
//! in-flight request answered. `scripts/bench-intake.sh` drives it; see `BENCHMARKS.md`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use clap::Parser;
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{json, Value};
use uuid::Uuid;

/// How many error bodies are printed to stderr before the rest are only counted.
const ERRORS_SHOWN: u64 = 5;

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "POST distinct outreach_visit submissions concurrently and report throughput and latency"
)]
struct Args {
    /// The server's base URL, e.g. http://127.0.0.1:8080
    #[arg(long)]
    base_url: String,
    /// A peer educator's access token (sent as `Authorization: Bearer …`): every
    /// worker sends as this one phone.
    #[arg(
        long,
        required_unless_present = "tokens_file",
        conflicts_with = "tokens_file"
    )]
    token: Option<String>,
    /// A file of access tokens, one a line, of peer educators in the same area: worker i
    /// sends as token i mod n, as many phones do (a file, so tokens stay out of `ps`).
    #[arg(long)]
    tokens_file: Option<std::path::PathBuf>,
    /// The org unit (ward or district) the visits happened in; inside the author's area.
    #[arg(long)]
    org_unit_id: Uuid,
    /// Concurrent workers, each with at most one request in flight.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// How long workers keep starting new requests.
    #[arg(long, default_value_t = 20)]
    duration_secs: u64,
    /// Contacts (people reached) per visit.
    #[arg(long, default_value_t = 8)]
    contacts: usize,
    /// Stop once this many visits were accepted in all (for filling a database), even
    /// before the duration ends.
    #[arg(long)]
    total: Option<u64>,
}

/// What one worker saw.
#[derive(Default)]
struct WorkerResult {
    /// Latency of each accepted request, in microseconds.
    accepted_micros: Vec<u32>,
    errors: u64,
}

/// A UIC nobody else has: `LG` and ten random letters and digits.
fn random_uic() -> String {
    format!(
        "LG{}",
        Alphanumeric
            .sample_string(&mut rand::thread_rng(), 10)
            .to_ascii_uppercase()
    )
}

/// One contact, as `tests/api/intake.rs` builds it.
fn contact(uic: &str, referrals: &[&str]) -> Value {
    json!({
        "uic": uic,
        "age_band": "25_34",
        "condoms_male": 10,
        "condoms_female": 2,
        "lubricant": 5,
        "self_test_kits": 1,
        "counselled": true,
        "referrals": referrals,
    })
}

/// A complete outreach visit with a fresh id and fresh clients; every other contact
/// (positions 0, 2, 4, …) is referred for an HIV test.
fn outreach_visit(unit: Uuid, contacts: usize) -> Value {
    let now = Utc::now();
    let contacts: Vec<Value> = (0..contacts)
        .map(|i| {
            let referrals: &[&str] = if i % 2 == 0 { &["hiv_test"] } else { &[] };
            contact(&random_uic(), referrals)
        })
        .collect();
    json!({
        "id": Uuid::new_v4(),
        "form_id": "outreach_visit",
        "form_version": 1,
        "started_at": (now - chrono::Duration::minutes(20)).to_rfc3339(),
        "completed_at": (now - chrono::Duration::minutes(5)).to_rfc3339(),
        "org_unit_id": unit,
        "answers": {
            "visit_date": now.date_naive().to_string(),
            "place_type": "karaoke",
            "contacts": contacts,
        },
    })
}

/// What every worker shares: where to send, as whom, what, until when.
struct Plan {
    client: reqwest::Client,
    url: String,
    unit: Uuid,
    contacts: usize,
    deadline: Instant,
    /// Stop once this many visits were taken (accepted, or in flight).
    total: u64,
    taken: AtomicU64,
    errors_seen: AtomicU64,
}

async fn worker(plan: Arc<Plan>, token: String) -> WorkerResult {
    let mut result = WorkerResult::default();
    while Instant::now() < plan.deadline && plan.taken.fetch_add(1, Ordering::Relaxed) < plan.total
    {
        // The body is built outside the timed part: only the server's work is measured.
        let body = outreach_visit(plan.unit, plan.contacts);
        let start = Instant::now();
        let outcome = async {
            let res = plan
                .client
                .post(&plan.url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await?;
            let status = res.status();
            let text = res.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        }
        .await;
        let micros = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
        let failure = match outcome {
            Ok((status, _)) if status == reqwest::StatusCode::CREATED => {
                result.accepted_micros.push(micros);
                None
            }
            Ok((status, text)) => Some(format!("HTTP {status}: {text}")),
            Err(e) => Some(format!("transport error: {e}")),
        };
        if let Some(message) = failure {
            // A request that was not accepted gives its place in the total back.
            plan.taken.fetch_sub(1, Ordering::Relaxed);
            result.errors += 1;
            if plan.errors_seen.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
                eprintln!("loadgen: {message}");
            }
        }
    }
    result
}

/// The value at quantile `q` (0..=1) of sorted samples, in milliseconds.
fn quantile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    anyhow::ensure!(
        args.duration_secs >= 1,
        "--duration-secs must be at least 1"
    );
    anyhow::ensure!(
        (1..=50).contains(&args.contacts),
        "--contacts must be 1 to 50 (the form's limit)"
    );

    let tokens: Vec<String> = match (&args.token, &args.tokens_file) {
        (Some(token), _) => vec![token.clone()],
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        (None, None) => anyhow::bail!("--token or --tokens-file is required"),
    };
    anyhow::ensure!(!tokens.is_empty(), "--tokens-file holds no token");

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let started = Instant::now();
    let plan = Arc::new(Plan {
        client,
        url: format!("{}/api/v1/submissions", args.base_url.trim_end_matches('/')),
        unit: args.org_unit_id,
        contacts: args.contacts,
        deadline: started + Duration::from_secs(args.duration_secs),
        total: args.total.unwrap_or(u64::MAX),
        taken: AtomicU64::new(0),
        errors_seen: AtomicU64::new(0),
    });
    let workers: Vec<_> = (0..args.concurrency)
        .map(|i| {
            let token = tokens[i % tokens.len()].clone();
            tokio::spawn(worker(Arc::clone(&plan), token))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    for w in workers {
        let r = w.await.context("a worker panicked")?;
        latencies.extend(r.accepted_micros);
        errors += r.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();

    let accepted = latencies.len() as u64;
    // Written by hand to keep the keys in this order (serde_json's map sorts them).
    println!(
        "{{\"concurrency\":{},\"phones\":{},\"duration_s\":{},\"accepted\":{},\"errors\":{},\"per_sec\":{},\"p50_ms\":{},\"p99_ms\":{},\"max_ms\":{}}}",
        args.concurrency,
        tokens.len().min(args.concurrency),
        round(elapsed, 3),
        accepted,
        errors,
        round(accepted as f64 / elapsed, 1),
        round(quantile_ms(&latencies, 0.50), 2),
        round(quantile_ms(&latencies, 0.99), 2),
        round(quantile_ms(&latencies, 1.0), 2),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        let samples: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(quantile_ms(&samples, 0.5), 50.0);
        assert_eq!(quantile_ms(&samples, 0.99), 99.0);
        assert_eq!(quantile_ms(&samples, 1.0), 100.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn visits_have_distinct_ids_and_clients() {
        let unit = Uuid::new_v4();
        let a = outreach_visit(unit, 8);
        let b = outreach_visit(unit, 8);
        assert_ne!(a["id"], b["id"]);
        let contacts = a["answers"]["contacts"].as_array().expect("contacts");
        assert_eq!(contacts.len(), 8);
        let mut uics: Vec<&str> = contacts
            .iter()
            .chain(b["answers"]["contacts"].as_array().expect("contacts"))
            .filter_map(|c| c["uic"].as_str())
            .collect();
        assert!(uics.iter().all(|u| u.len() == 12 && u.starts_with("LG")));
        uics.sort_unstable();
        uics.dedup();
        assert_eq!(uics.len(), 16);
        let referred = contacts
            .iter()
            .filter(|c| c["referrals"].as_array().is_some_and(|r| !r.is_empty()))
            .count();
        assert_eq!(referred, 4);
    }
}
