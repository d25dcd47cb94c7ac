//! Just enough W3C WebDriver, spoken as JSON over `reqwest`, to drive Debian's Chromium
//! through its chromedriver: sessions, navigation, elements, keyboard actions, scripts
//! (which run through DevTools, so the console's CSP does not block them) and
//! whole-page screenshots. A browser that cannot be started fails the test: it never skips.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

/// The W3C key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The Tab key in WebDriver's key codes.
pub const TAB: char = '\u{E004}';
/// The Enter key.
pub const ENTER: char = '\u{E007}';

/// How long a wait for something on a page lasts before the test fails.
const WAIT: Duration = Duration::from_secs(15);

/// Where the browser and its driver are, from `scripts/test.sh`'s variables (Debian's
/// paths by default).
#[derive(Debug, Clone)]
pub struct BrowserPaths {
    pub chromedriver: PathBuf,
    pub chromium: PathBuf,
}

impl BrowserPaths {
    /// The configured paths, or why they cannot be used.
    pub fn from_env() -> Result<BrowserPaths, String> {
        let path = |var: &str, default: &str| {
            PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_string()))
        };
        let paths = BrowserPaths {
            chromedriver: path("DONGHANH_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"),
            chromium: path("DONGHANH_TEST_CHROMIUM", "/usr/bin/chromium"),
        };
        for p in [&paths.chromedriver, &paths.chromium] {
            if !p.is_file() {
                return Err(format!(
                    "{} not found (DONGHANH_TEST_CHROMEDRIVER / DONGHANH_TEST_CHROMIUM; scripts/test.sh installs Debian's chromium and chromium-driver)",
                    p.display()
                ));
            }
        }
        Ok(paths)
    }
}

/// A chromedriver process on a loopback port of its own, killed when dropped.
pub struct Driver {
    url: String,
    child: Child,
    paths: BrowserPaths,
    http: reqwest::Client,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it says it is ready.
    pub async fn start(paths: &BrowserPaths) -> Result<Driver, String> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| e.to_string())?;
        let mut last = String::new();
        // A port taken between the probe and chromedriver's bind: try another.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("no free port: {e}"))?
                .port();
            let mut child = Command::new(&paths.chromedriver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", paths.chromedriver.display()))?;
            let url = format!("http://127.0.0.1:{port}");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("chromedriver exited with {status}");
                    break;
                }
                let ready = http
                    .get(format!("{url}/status"))
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success());
                if let Some(res) = ready {
                    let body: Value = res.json().await.unwrap_or_default();
                    if body["value"]["ready"] == true {
                        return Ok(Driver {
                            url,
                            child,
                            paths: paths.clone(),
                            http,
                        });
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
            if last.is_empty() {
                last = "chromedriver was not ready within 10 s".into();
            }
        }
        Err(last)
    }

    /// A new headless Chromium with a fresh profile: a desktop window of `width`×`height`,
    /// or a phone's screen through chromedriver's device emulation.
    pub async fn session(&self, screen: Screen) -> Result<Session, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-default-apps".into(),
            "--disable-extensions".into(),
            "--hide-scrollbars".into(),
            "--lang=vi".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = json!({
            "binary": self.paths.chromium.display().to_string(),
        });
        match screen {
            Screen::Desktop { width, height } => {
                args.push(format!("--window-size={width},{height}"))
            }
            Screen::Phone { width, height } => {
                options["mobileEmulation"] = json!({
                    "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2 }
                });
            }
        }
        options["args"] = json!(args);
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": options,
        }}});
        let value = call(
            &self.http,
            Method::POST,
            &format!("{}/session", self.url),
            Some(&caps),
        )
        .await
        .map_err(|e| format!("new session: {e}"))?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| format!("new session answered {value}"))?
            .to_string();
        let session = Session {
            base: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
            open: true,
            _profile: profile,
        };
        session
            .cmd(
                Method::POST,
                "/timeouts",
                Some(&json!({ "script": 60_000, "pageLoad": 30_000, "implicit": 0 })),
            )
            .await?;
        Ok(session)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the browser's screen is.
#[derive(Debug, Clone, Copy)]
pub enum Screen {
    Desktop { width: u32, height: u32 },
    Phone { width: u32, height: u32 },
}

async fn call(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let mut req = http.request(method.clone(), url);
    if let Some(b) = body {
        req = req.json(b);
    } else if method == Method::POST {
        req = req.json(&json!({}));
    }
    let res = req
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = res.status();
    let body: Value = res
        .json()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "{method} {url} answered {status}: {} {}",
            body["value"]["error"], body["value"]["message"]
        ));
    }
    Ok(body["value"].clone())
}

/// One browser; closed by `close`, or (after a failure) when dropped.
pub struct Session {
    base: String,
    http: reqwest::Client,
    open: bool,
    _profile: tempfile::TempDir,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Session {
    async fn cmd(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, String> {
        call(&self.http, method, &format!("{}{path}", self.base), body).await
    }

    /// Panics with the command that failed: inside a scenario every command must work.
    async fn must(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        match self.cmd(method, path, body).await {
            Ok(v) => v,
            Err(e) => panic!("webdriver: {e}"),
        }
    }

    /// Loads `url` and waits for the page.
    pub async fn goto(&self, url: &str) {
        self.must(Method::POST, "/url", Some(&json!({ "url": url })))
            .await;
    }

    /// The address of the current page.
    pub async fn url(&self) -> String {
        self.must(Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Every element matching a CSS selector, now.
    pub async fn all(&self, css: &str) -> Vec<Element> {
        let found = self
            .must(
                Method::POST,
                "/elements",
                Some(&json!({ "using": "css selector", "value": css })),
            )
            .await;
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str())
                    .map(|id| Element(id.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, waited for.
    pub async fn find(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Some(e) = self.all(css).await.into_iter().next() {
                return e;
            }
            if started.elapsed() > WAIT {
                let url = self.url().await;
                let page = self
                    .exec(
                        "return document.documentElement.outerHTML.slice(0, 1500);",
                        json!([]),
                    )
                    .await;
                panic!(
                    "no element matches `{css}` on {url}; the page begins:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, e: &Element) {
        self.must(Method::POST, &format!("/element/{}/click", e.0), None)
            .await;
    }

    /// Clicks the first element matching `css`.
    pub async fn click_css(&self, css: &str) {
        let e = self.find(css).await;
        self.click(&e).await;
    }

    /// Types into an element (WebDriver focuses it first).
    pub async fn type_into(&self, e: &Element, text: &str) {
        self.must(
            Method::POST,
            &format!("/element/{}/value", e.0),
            Some(&json!({ "text": text })),
        )
        .await;
    }

    /// Presses each key of `keys` in turn on whatever has the focus: a person typing.
    pub async fn keyboard(&self, keys: &str) {
        let mut actions = Vec::new();
        for k in keys.chars() {
            actions.push(json!({ "type": "keyDown", "value": k.to_string() }));
            actions.push(json!({ "type": "keyUp", "value": k.to_string() }));
        }
        self.must(
            Method::POST,
            "/actions",
            Some(&json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })),
        )
        .await;
        self.must(Method::DELETE, "/actions", None).await;
    }

    pub async fn text(&self, e: &Element) -> String {
        self.must(Method::GET, &format!("/element/{}/text", e.0), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The visible text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.text(&e).await
    }

    /// Runs a script in the page (a function body; `arguments` are `args`).
    pub async fn exec(&self, script: &str, args: Value) -> Value {
        self.must(
            Method::POST,
            "/execute/sync",
            Some(&json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Runs an asynchronous script: it calls `arguments[arguments.length - 1]` when done.
    pub async fn exec_async(&self, script: &str, args: Value) -> Value {
        self.must(
            Method::POST,
            "/execute/async",
            Some(&json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Waits until `script` (a function body) returns `true`.
    pub async fn wait_for(&self, what: &str, script: &str, args: Value) {
        let started = Instant::now();
        loop {
            if self.exec(script, args.clone()).await == Value::Bool(true) {
                return;
            }
            if started.elapsed() > WAIT {
                let url = self.url().await;
                panic!("waited {WAIT:?} for {what} on {url}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page's path (and query) is `path_and_query` and it has loaded.
    pub async fn wait_for_page(&self, path_and_query: &str) {
        self.wait_for(
            &format!("the page {path_and_query}"),
            "return location.pathname + location.search === arguments[0] && document.readyState === 'complete';",
            json!([path_and_query]),
        )
        .await;
    }

    /// A PNG of the whole page, also what lies below the screen (Chromium's DevTools
    /// `Page.captureScreenshot` through chromedriver), at most 4,000 CSS pixels tall.
    pub async fn full_screenshot(&self) -> Vec<u8> {
        let metrics = self
            .must(
                Method::POST,
                "/goog/cdp/execute",
                Some(&json!({ "cmd": "Page.getLayoutMetrics", "params": {} })),
            )
            .await;
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().unwrap_or(800.0);
        let height = size["height"].as_f64().unwrap_or(600.0).min(4000.0);
        let shot = self
            .must(
                Method::POST,
                "/goog/cdp/execute",
                Some(&json!({ "cmd": "Page.captureScreenshot", "params": {
                    "format": "png", "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 }
                }})),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .expect("screenshot is base64")
    }

    /// Ends the browser.
    pub async fn close(mut self) {
        self.open = false;
        let _ = self.cmd(Method::DELETE, "", None).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // A failed test: end the browser from a runtime of our own, the test's is unwinding.
        let url = self.base.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let http = reqwest::Client::builder().no_proxy().build();
                if let Ok(http) = http {
                    let _ = http
                        .delete(url)
                        .timeout(Duration::from_secs(20))
                        .send()
                        .await;
                }
            });
        })
        .join();
    }
}
