//! axe-core (from npm, pinned in `scripts/services.sh`) run on every page the scenario
//! visits. It is injected through WebDriver's script execution, which goes through
//! DevTools and so is not subject to the page's `Content-Security-Policy` (the console
//! allows no inline script). Every violation is recorded; `serious` and `critical` ones
//! fail the test at its end, after every page was seen.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::webdriver::Session;

/// The axe-core script, read once.
pub struct Axe {
    source: String,
}

/// One rule broken on a page.
#[derive(Debug, Clone)]
pub struct Violation {
    pub id: String,
    pub impact: String,
    pub help: String,
    pub targets: Vec<String>,
}

impl Violation {
    /// Whether it fails the test.
    pub fn blocking(&self) -> bool {
        matches!(self.impact.as_str(), "serious" | "critical")
    }
}

/// What axe found on each page, in the order visited.
#[derive(Debug, Default)]
pub struct Findings {
    pub pages: Vec<(String, Vec<Violation>)>,
}

impl Findings {
    /// A line per page (and one per violation under it).
    pub fn report(&self) -> String {
        let mut out = String::new();
        for (page, violations) in &self.pages {
            if violations.is_empty() {
                let _ = writeln!(out, "  {page}: no violations");
                continue;
            }
            let _ = writeln!(out, "  {page}: {} violation(s)", violations.len());
            for v in violations {
                let _ = writeln!(
                    out,
                    "    [{}] {}: {} — {}",
                    v.impact,
                    v.id,
                    v.help,
                    v.targets.join(", ")
                );
            }
        }
        out
    }

    pub fn blocking(&self) -> usize {
        self.pages
            .iter()
            .flat_map(|(_, v)| v)
            .filter(|v| v.blocking())
            .count()
    }
}

/// Turns axe's `violations` into ours.
fn parse(violations: &Value) -> Vec<Violation> {
    violations
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| Violation {
                    id: v["id"].as_str().unwrap_or_default().to_string(),
                    impact: v["impact"].as_str().unwrap_or("none").to_string(),
                    help: v["help"].as_str().unwrap_or_default().to_string(),
                    targets: v["nodes"]
                        .as_array()
                        .map(|nodes| {
                            nodes
                                .iter()
                                .map(|n| {
                                    n["target"]
                                        .as_array()
                                        .map(|t| {
                                            t.iter()
                                                .map(|s| {
                                                    s.as_str().map_or(s.to_string(), str::to_string)
                                                })
                                                .collect::<Vec<_>>()
                                                .join(" ")
                                        })
                                        .unwrap_or_default()
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Axe {
    /// axe.min.js from `DONGHANH_TEST_AXE_JS`, or why it cannot be had.
    pub fn from_env() -> Result<Axe, String> {
        let path = std::env::var("DONGHANH_TEST_AXE_JS").map_err(|_| {
            "DONGHANH_TEST_AXE_JS is not set (scripts/test.sh installs axe-core with npm)"
                .to_string()
        })?;
        let source = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        Ok(Axe { source })
    }

    /// Runs axe on the page the session shows and records what it found under `page`.
    pub async fn check(&self, session: &Session, page: &str, findings: &mut Findings) {
        let loaded = session
            .exec(
                &format!("{}\n;return typeof window.axe === 'object' && typeof window.axe.run === 'function';", self.source),
                json!([]),
            )
            .await;
        assert_eq!(loaded, Value::Bool(true), "axe-core did not load on {page}");
        let result = session
            .exec_async(
                "const done = arguments[arguments.length - 1];
                 window.axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done({ ok: true, violations: r.violations.map(v => ({
                       id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.map(n => ({ target: n.target })) })) }))
                   .catch(e => done({ ok: false, error: String(e) }));",
                json!([]),
            )
            .await;
        assert_eq!(result["ok"], true, "axe.run failed on {page}: {result}");
        let violations = parse(&result["violations"]);
        for v in &violations {
            eprintln!(
                "axe on {page}: [{}] {}: {} — {}",
                v.impact,
                v.id,
                v.help,
                v.targets.join(", ")
            );
        }
        findings.pages.push((page.to_string(), violations));
    }
}
