//! `photoload`: photo upload throughput. Uploads `--count` distinct photos of
//! `--size-bytes` each with `--concurrency` uploads in flight, either through the server
//! (`PUT /api/v1/submissions/{id}/photos/{sha256}`, after creating the submissions that
//! name them, untimed) or straight to the S3 store (`--direct-*`), and prints one line:
//!
//! `{"mode":..,"concurrency":N,"uploads":..,"errors":..,"bytes":..,"seconds":..,"mb_per_s":..,"p50_ms":..,"p99_ms":..}`
//!
//! The photos are JPEG-shaped (SOI, APP0, SOS, then pseudo-random scan data, EOI) and
//! generated from their index, so nothing is held in memory beyond the uploads in
//! flight. `scripts/bench-photos.sh` drives it; see `BENCHMARKS.md`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "photoload",
    about = "upload photos concurrently and report MB/s"
)]
struct Args {
    /// The server's base URL (server mode).
    #[arg(long)]
    base_url: Option<String>,
    /// A peer educator's access token (server mode).
    #[arg(long)]
    token: Option<String>,
    /// The org unit the visits are made in (server mode).
    #[arg(long)]
    org_unit_id: Option<Uuid>,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// How many photos to upload.
    #[arg(long, default_value_t = 200)]
    count: usize,
    /// Size of each photo in bytes.
    #[arg(long, default_value_t = 2_000_000)]
    size_bytes: usize,
    /// Seed of the photos' bytes (runs with another seed upload other photos).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// S3 endpoint: upload straight to the store instead of through the server.
    #[arg(long)]
    direct_endpoint: Option<String>,
    #[arg(long, default_value = "garage")]
    direct_region: String,
    #[arg(long)]
    direct_bucket: Option<String>,
    #[arg(long)]
    direct_key_id: Option<String>,
    #[arg(long)]
    direct_secret: Option<String>,
}

/// Photo `index` of `seed`: a JPEG's markers around `size` bytes of xorshift noise.
fn photo(seed: u64, index: usize, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&[0xFF, 0xD8]);
    out.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
    out.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    let mut x = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index as u64 + 1)
        | 1;
    while out.len() + 2 < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for b in x.to_le_bytes() {
            if out.len() + 2 < size {
                // 0xFF would start a marker inside scan data; keep it out.
                out.push(if b == 0xFF { 0xFE } else { b });
            }
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

enum Target {
    Server {
        client: reqwest::Client,
        base: String,
        token: String,
        /// The submission naming each photo, by index.
        submissions: Vec<Uuid>,
    },
    Direct {
        client: aws_sdk_s3::Client,
        bucket: String,
        run: Uuid,
    },
}

/// Creates one outreach visit per five photos (the form's limit), naming their digests.
async fn create_submissions(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    unit: Uuid,
    args: &Args,
) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(args.count);
    let now = chrono::Utc::now();
    for chunk in (0..args.count).collect::<Vec<_>>().chunks(5) {
        let id = Uuid::new_v4();
        let photos: Vec<_> = chunk
            .iter()
            .map(|i| json!({ "photo": sha256_hex(&photo(args.seed, *i, args.size_bytes)) }))
            .collect();
        let body = json!({
            "id": id,
            "form_id": "outreach_visit",
            "form_version": 1,
            "started_at": (now - chrono::Duration::minutes(10)).to_rfc3339(),
            "completed_at": now.to_rfc3339(),
            "org_unit_id": unit,
            "answers": {
                "visit_date": now.date_naive().to_string(),
                "place_type": "street",
                "contacts": [{
                    "uic": format!("PL{}", &id.simple().to_string()[..10]).to_uppercase(),
                    "age_band": "25_34", "condoms_male": 1, "condoms_female": 0,
                    "lubricant": 0, "self_test_kits": 0, "counselled": false
                }],
                "photos": photos,
            },
        });
        let res = client
            .post(format!("{base}/api/v1/submissions"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            res.status().as_u16() == 201,
            "creating a submission answered {}: {}",
            res.status(),
            res.text().await.unwrap_or_default()
        );
        ids.extend(chunk.iter().map(|_| id));
    }
    Ok(ids)
}

async fn upload(target: &Target, args: &Args, index: usize) -> anyhow::Result<()> {
    let bytes = photo(args.seed, index, args.size_bytes);
    let sha = sha256_hex(&bytes);
    match target {
        Target::Server {
            client,
            base,
            token,
            submissions,
        } => {
            let res = client
                .put(format!(
                    "{base}/api/v1/submissions/{}/photos/{sha}",
                    submissions[index]
                ))
                .bearer_auth(token)
                .header("content-type", "image/jpeg")
                .body(bytes)
                .send()
                .await?;
            let status = res.status().as_u16();
            anyhow::ensure!(
                status == 201 || status == 200,
                "upload answered {status}: {}",
                res.text().await.unwrap_or_default()
            );
        }
        Target::Direct {
            client,
            bucket,
            run,
        } => {
            client
                .put_object()
                .bucket(bucket)
                .key(format!("bench/{run}/{sha}"))
                .content_type("image/jpeg")
                .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
                .send()
                .await
                .context("direct put")?;
        }
    }
    Ok(())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx.min(sorted.len() - 1)]) / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let (mode, target) = match &args.direct_endpoint {
        Some(endpoint) => {
            let creds = aws_sdk_s3::config::Credentials::new(
                args.direct_key_id.clone().context("--direct-key-id")?,
                args.direct_secret.clone().context("--direct-secret")?,
                None,
                None,
                "photoload",
            );
            let config = aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .endpoint_url(endpoint)
                .region(aws_sdk_s3::config::Region::new(args.direct_region.clone()))
                .credentials_provider(creds)
                .force_path_style(true)
                .build();
            (
                "direct",
                Target::Direct {
                    client: aws_sdk_s3::Client::from_conf(config),
                    bucket: args.direct_bucket.clone().context("--direct-bucket")?,
                    run: Uuid::new_v4(),
                },
            )
        }
        None => {
            let base = args.base_url.clone().context("--base-url")?;
            let token = args.token.clone().context("--token")?;
            let unit = args.org_unit_id.context("--org-unit-id")?;
            let client = reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(300))
                .build()?;
            let submissions = create_submissions(&client, &base, &token, unit, &args).await?;
            (
                "server",
                Target::Server {
                    client,
                    base,
                    token,
                    submissions,
                },
            )
        }
    };
    let target = Arc::new(target);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (target, args, next) = (target.clone(), args.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut micros = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= args.count {
                    break;
                }
                let t = Instant::now();
                match upload(&target, &args, i).await {
                    Ok(()) => micros.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32),
                    Err(e) => {
                        if errors < 3 {
                            eprintln!("photoload: {e:#}");
                        }
                        errors += 1;
                    }
                }
            }
            (micros, errors)
        }));
    }
    let mut micros = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (m, e) = w.await?;
        micros.extend(m);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    micros.sort_unstable();
    let bytes = micros.len() as f64 * args.size_bytes as f64;
    println!(
        "{}",
        json!({
            "mode": mode,
            "concurrency": args.concurrency,
            "uploads": micros.len(),
            "errors": errors,
            "bytes": bytes as u64,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "mb_per_s": ((bytes / 1_000_000.0 / seconds) * 100.0).round() / 100.0,
            "p50_ms": percentile(&micros, 0.50),
            "p99_ms": percentile(&micros, 0.99),
        })
    );
    Ok(())
}
