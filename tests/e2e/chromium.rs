//! Debian's headless Chromium driven through ChromeDriver (fantoccini), for browser e2e tests.
//! `start()` skips (fails under `CI=true`) without the browser; helpers panic with URL and page.
#![allow(dead_code, reason = "each test uses only some of the helpers")]

use std::fmt::Display;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WindowHandle};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// How long a waiting helper (and ChromeDriver's start) may take.
const TIMEOUT: Duration = Duration::from_secs(20);
/// How often a waiting helper tries again.
const POLL: Duration = Duration::from_millis(100);
/// Chromium's switches; `--user-data-dir` is added per browser.
const ARGS: &str = "--headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage \
    --window-size=390,844 --disable-popup-blocking";
/// One browser at a time in the whole test binary: the machines have 2 cores.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// A WebDriver command's result.
type Cmd<T> = Result<T, fantoccini::error::CmdError>;

/// ChromeDriver (a child on 127.0.0.1:`port`), its session and a throwaway profile; ended on drop.
pub struct Chromium {
    wd: Client,
    session: String,
    port: u16,
    driver: Child,
    profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// One blocking HTTP/1.1 request to ChromeDriver on 127.0.0.1; the response, or `None`.
fn http(port: u16, method: &str, path: &str, wait: Duration) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), wait).ok()?;
    stream.set_read_timeout(Some(wait)).ok()?;
    let request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = [0_u8; 4096]; // Status line and headers suffice; ChromeDriver keeps alive.
    let n = stream.read(&mut response).ok()?;
    Some(String::from_utf8_lossy(&response[..n]).into_owned())
}

/// Starts ChromeDriver (temp files in `tmp`) on a free 127.0.0.1 port; waits for `GET /status`.
async fn spawn_driver(path: &Path, tmp: &Path) -> (Child, u16) {
    let shown = path.display();
    let free = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr());
    let port = free.expect("bind 127.0.0.1:0 to find a port").port();
    let mut command = Command::new(path);
    command.arg(format!("--port={port}")).env("TMPDIR", tmp);
    let spawned = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    let mut child = spawned.unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let status = http(port, "GET", "/status", POLL * 20).unwrap_or_default();
        if status.starts_with("HTTP/1.1 200") {
            return (child, port);
        }
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if exited || Instant::now() > deadline {
            let _ = (child.kill(), child.wait());
            panic!("{shown} --port={port}: no answer to GET /status (exited: {exited})");
        }
        tokio::time::sleep(POLL).await;
    }
}

impl Chromium {
    /// Starts ChromeDriver and a headless Chromium session, or `None` (loudly) if not installed.
    pub async fn start() -> Option<Chromium> {
        let tool = |var, path| std::env::var_os(var).map_or(PathBuf::from(path), PathBuf::from);
        let browser = tool("SWITCHYARD_CHROMIUM", "/usr/bin/chromium");
        let driver = tool("SWITCHYARD_CHROMEDRIVER", "/usr/bin/chromedriver");
        if let Some(absent) = [&browser, &driver].into_iter().find(|p| !p.is_file()) {
            let test = std::thread::current().name().unwrap_or("?").to_owned();
            let what = format!("browser test {test}: {} is missing", absent.display());
            let ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
            assert!(!ci, "{what}: .ci/run must install chromium chromium-driver");
            let loud = format!("\n*** SKIPPED: {what} (apt install chromium chromium-driver)\n");
            let _ = std::io::stderr().write_all(loud.as_bytes()); // Not captured, unlike eprintln!.
            return None;
        }
        let _turn = ONE_BROWSER.lock().await;
        let profile = tempfile::tempdir().expect("create a temporary --user-data-dir");
        let mut args: Vec<String> = ARGS.split_whitespace().map(str::to_owned).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        // Headless windows are >= 500 px wide with 143 px of hidden UI: emulate a phone viewport.
        let phone = json!({ "width": 390, "height": 844, "pixelRatio": 1,
                            "mobile": false, "touch": false });
        let options = json!({ "binary": browser.to_string_lossy(), "args": args,
                              "mobileEmulation": { "deviceMetrics": phone } });
        let caps = json!({ "browserName": "chrome", "goog:chromeOptions": options });
        let caps: Capabilities = serde_json::from_value(caps).expect("capabilities object");
        let (mut driver, port) = spawn_driver(&driver, profile.path()).await;
        let mut builder = ClientBuilder::new(HttpConnector::new());
        let url = format!("http://127.0.0.1:{port}");
        let connected = builder.capabilities(caps).connect(&url).await;
        let wd = connected.unwrap_or_else(|e| {
            let _ = (driver.kill(), driver.wait());
            panic!("ChromeDriver could not start {}: {e}", browser.display())
        });
        let session = wd.session_id().await.ok().flatten().unwrap_or_default();
        let chromium = Chromium {
            wd,
            session,
            port,
            driver,
            profile,
            _turn,
        };
        let viewport = chromium.execute("return [innerWidth, innerHeight]", vec![]);
        assert_eq!(viewport.await, json!([390, 844]), "chromium: viewport");
        Some(chromium)
    }

    /// Ends the WebDriver session (Chromium quits); dropping then kills ChromeDriver.
    pub async fn finish(mut self) {
        if self.wd.clone().close().await.is_ok() {
            self.session.clear(); // Else dropping tries again.
        }
    }

    /// The fantoccini client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.wd
    }

    /// The current URL and a short excerpt of the page's body, for failure messages.
    async fn context(&self) -> String {
        let url = self.wd.current_url().await.map(String::from);
        let url = url.unwrap_or_else(|e| format!("<{e}>"));
        let source = self.wd.source().await.unwrap_or_else(|e| format!("<{e}>"));
        let body = source.find("<body").map_or(&source[..], |at| &source[at..]);
        let words: Vec<&str> = body.split_whitespace().collect();
        let excerpt: String = words.join(" ").chars().take(1200).collect();
        format!("\n  at URL: {url}\n  page: {excerpt}")
    }

    /// Awaits `cmd`; on error, panics naming `what`, with the page's context.
    async fn must<T>(&self, what: impl Display, cmd: impl Future<Output = Cmd<T>>) -> T {
        match cmd.await {
            Ok(value) => value,
            Err(e) => panic!("chromium: {what} failed: {e}{}", self.context().await),
        }
    }

    /// Retries `attempt` every 100 ms for up to 20 s; panics with its last error and the context.
    async fn poll<T, F>(&self, what: &str, mut attempt: impl FnMut() -> F) -> T
    where
        F: Future<Output = anyhow::Result<T>>,
    {
        let deadline = Instant::now() + TIMEOUT;
        let error = loop {
            match attempt().await {
                Ok(value) => return value,
                Err(e) if Instant::now() > deadline => break e,
                Err(_) => tokio::time::sleep(POLL).await,
            }
        };
        let context = self.context().await;
        panic!("chromium: {what}: not done in {TIMEOUT:?}: {error:#}{context}")
    }

    /// Navigates to `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.must(format!("goto({url:?})"), self.wd.goto(url)).await;
    }

    /// Waits up to 20 s for an element matching `css`.
    pub async fn wait_css(&self, css: &str) -> Element {
        let find = move || async move { Ok(self.wd.find(Locator::Css(css)).await?) };
        self.poll(&format!("wait_css({css:?})"), find).await
    }

    /// Waits up to 20 s, without reloading, until an element matching `css` contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) {
        let what = format!("wait_text({css:?}, {needle:?})");
        let js = "const t = Array.from(document.querySelectorAll(arguments[0]), e => e.innerText); \
                  return t.some(text => text.includes(arguments[1])) ? null : t";
        let seen = move || async move {
            let texts = self.wd.execute(js, vec![json!(css), json!(needle)]).await?;
            anyhow::ensure!(texts.is_null(), "texts seen: {texts}");
            Ok(())
        };
        self.poll(&what, seen).await;
    }

    /// Clicks the element matching `css`, retrying up to 20 s while missing or not clickable.
    pub async fn click(&self, css: &str) {
        let go = move || async move { Ok(self.wd.find(Locator::Css(css)).await?.click().await?) };
        self.poll(&format!("click({css:?})"), go).await;
    }

    /// Clears the field matching `css` and types `value` into it.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.wait_css(css).await;
        self.must(format!("clear({css:?})"), field.clear()).await;
        let what = format!("fill({css:?}, {value:?})");
        self.must(what, field.send_keys(value)).await;
    }

    /// Chooses the `<option>` whose value is `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        let select = self.wait_css(css).await;
        let what = format!("select({css:?}, {value:?})");
        self.must(what, select.select_by_value(value)).await;
    }

    /// Ticks the checkbox matching `css` unless it is already ticked.
    pub async fn check(&self, css: &str) {
        let (checkbox, what) = (self.wait_css(css).await, format!("check({css:?})"));
        if !self.must(&what, checkbox.is_selected()).await {
            self.must(what, checkbox.click()).await;
        }
    }

    /// The visible text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let element = self.wait_css(css).await;
        self.must(format!("text({css:?})"), element.text()).await
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.must("current_url", self.wd.current_url()).await.into()
    }

    /// The current page's HTML.
    pub async fn source(&self) -> String {
        self.must("source", self.wd.source()).await
    }

    /// Runs `js` (a function body; `arguments[i]` are `args`) in the page; returns its value.
    pub async fn execute(&self, js: &str, args: Vec<Value>) -> Value {
        let what = format!("execute({js:?})");
        self.must(what, self.wd.execute(js, args)).await
    }

    /// Saves a PNG of the viewport as `console-screenshots/<name>.png` in `CARGO_TARGET_TMPDIR`
    /// (else the temp dir), and in `$SWITCHYARD_SCREENSHOTS` too if set; returns the first path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        assert!(!name.contains(['/', '\\']), "{name:?}: not a file name");
        let png = self.must("screenshot", self.wd.screenshot()).await;
        let tmp = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let first = tmp.join("console-screenshots");
        let extra = std::env::var_os("SWITCHYARD_SCREENSHOTS").filter(|dir| !dir.is_empty());
        for dir in std::iter::once(first.clone()).chain(extra.map(PathBuf::from)) {
            let file = dir.join(format!("{name}.png"));
            let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, &png));
            written.unwrap_or_else(|e| panic!("cannot write screenshot {}: {e}", file.display()));
        }
        first.join(format!("{name}.png"))
    }

    /// The handle of the window that commands currently go to.
    pub async fn current_window(&self) -> WindowHandle {
        self.must("window", self.wd.window()).await
    }

    /// Waits up to 20 s for another window (e.g. a popup), switches to it; returns the one left.
    pub async fn switch_to_new_window(&self) -> WindowHandle {
        let (from, wd) = (self.current_window().await, &self.wd);
        let other = || async {
            let other = wd.windows().await?.into_iter().find(|w| *w != from);
            other.ok_or_else(|| anyhow::anyhow!("only one window is open"))
        };
        let new = self.poll("switch_to_new_window", other).await;
        self.must("switch", self.wd.switch_to_window(new)).await;
        from
    }

    /// Switches back to `window` (e.g. what `switch_to_new_window` returned).
    pub async fn switch_back(&self, window: WindowHandle) {
        let what = format!("switch_back({window:?})");
        self.must(what, self.wd.switch_to_window(window)).await;
    }
}

impl Drop for Chromium {
    /// Ends the session unless `finish` did (killing ChromeDriver alone leaves Chromium running).
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            let _ = http(self.port, "DELETE", &path, Duration::from_secs(10));
        }
        let _ = (self.driver.kill(), self.driver.wait());
    }
}
