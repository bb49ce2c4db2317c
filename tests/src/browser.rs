//! Opens an interactive flame graph SVG (as `inferno::flamegraph` writes it) in headless
//! Chromium, as a person would: checks on a screenshot that its root frames are drawn and
//! that clicking one zooms into it.
//!
//! Chromium is Debian's, at [`CHROMIUM`] (`cargo xtask setup` installs it), driven over
//! the DevTools protocol. What this relies on in inferno's SVG: every frame is a child of
//! `#frames` holding a `<title>` ("name (N samples, P%)") and a `<rect>` with a `fill`;
//! `all` is the frame under (or, inverted, over) every other; the embedded script's
//! `init()` sets the global `known_font_width`, and a click on a frame hides the frames
//! outside it and stretches it to the graph's width.
use std::{
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use headless_chrome::{
    browser::tab::point::Point,
    protocol::cdp::{Emulation, Page},
    Browser, LaunchOptions, Tab,
};
use serde_json::Value;

/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser window: inferno's default image width, so a fluid graph is drawn as wide as
/// it was laid out. The viewport grows taller when a deep graph needs it.
const WINDOW: (u32, u32) = (1200, 800);

/// How long loading the graph, running its script and each DevTools call may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// How far a drawn pixel may be from the frame's fill colour, per channel.
const COLOUR_TOLERANCE: u8 = 8;

/// What share of a frame's box (less its edges) must be its fill colour: the rest may be
/// its label's glyphs.
const MIN_FILL_SHARE: f64 = 0.5;

/// A zoomed frame spans at least this share of the graph's width.
const ZOOMED_SHARE: f64 = 0.99;

/// One frame as the page lays it out, in CSS pixels from the screenshot's top left.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameBox {
    /// The frame's name: its title up to " (N samples, ...)".
    pub name: String,
    /// Its whole title, e.g. "clientA (30 samples, 66.67%)".
    pub title: String,
    /// Its rectangle's left edge.
    pub x: f64,
    /// Its rectangle's top edge.
    pub y: f64,
    /// Its rectangle's width (0 when hidden).
    pub width: f64,
    /// Its rectangle's height (0 when hidden).
    pub height: f64,
    /// Its rectangle's fill colour.
    pub fill: [u8; 3],
    /// Whether the flame graph's script hid it (`display: none`).
    pub hidden: bool,
}

/// What [`check_flamegraph`] saw.
#[derive(Clone, Debug)]
pub struct FlameView {
    /// The graph's drawing area (`#frames`): its width is what a zoomed frame spans.
    pub graph_width: f64,
    /// The root frames asked for, in that order, as the graph opened.
    pub opened: Vec<FrameBox>,
    /// The same frames after the click on the first.
    pub zoomed: Vec<FrameBox>,
    /// The screenshot of the graph as opened (PNG).
    pub screenshot: PathBuf,
    /// The screenshot after the click: `<stem>-zoomed.png` beside `screenshot`.
    pub zoomed_screenshot: PathBuf,
}

/// Opens the flame graph `svg` in headless Chromium and checks it as a person would:
/// every frame named in `root_frames` (frames right on top of `all`, by name) is laid out
/// with a positive size and drawn in its fill colour on a screenshot of the graph, which
/// is written to `screenshot` (PNG); a real mouse click on the first of them zooms into
/// it: it then spans the graph's width and is drawn so on a second screenshot, written to
/// `<stem>-zoomed.png` beside the first, and every other root frame is hidden or has no
/// width. Returns the frames' boxes before and after the click.
///
/// Panics, saying what is wrong, if any check fails, if `root_frames` is empty or if
/// Chromium is missing or does not answer.
pub fn check_flamegraph(svg: &Path, root_frames: &[&str], screenshot: &Path) -> FlameView {
    assert!(
        !root_frames.is_empty(),
        "check_flamegraph needs at least one root frame"
    );
    let page = FlamePage::open(svg);

    let opened = page.root_frames(root_frames);
    let shot = page.screenshot(screenshot);
    for frame in &opened {
        assert!(
            !frame.hidden && frame.width > 0.0 && frame.height > 0.0,
            "{}: root frame {:?} is not laid out: {frame:?}",
            svg.display(),
            frame.name
        );
        assert_drawn(&shot, frame, screenshot);
    }

    page.click(&opened[0]);
    let zoomed = page.root_frames(root_frames);
    let zoomed_screenshot = zoomed_path(screenshot);
    let zoomed_shot = page.screenshot(&zoomed_screenshot);
    assert_zoomed(&zoomed, page.graph_width, svg);
    assert_drawn(&zoomed_shot, &zoomed[0], &zoomed_screenshot);

    FlameView {
        graph_width: page.graph_width,
        opened,
        zoomed,
        screenshot: screenshot.to_path_buf(),
        zoomed_screenshot,
    }
}

/// `<stem>-zoomed.png` beside `screenshot`.
fn zoomed_path(screenshot: &Path) -> PathBuf {
    let stem = screenshot
        .file_stem()
        .unwrap_or_else(|| panic!("screenshot path {} has no file name", screenshot.display()));
    screenshot.with_file_name(format!("{}-zoomed.png", stem.to_string_lossy()))
}

/// After the click on `frames[0]`: it spans (nearly) the graph's width, and every other
/// root frame is hidden or has no width.
fn assert_zoomed(frames: &[FrameBox], graph_width: f64, svg: &Path) {
    let (clicked, others) = frames.split_first().expect("at least one root frame");
    assert!(
        !clicked.hidden && clicked.width >= ZOOMED_SHARE * graph_width,
        "{}: clicking {:?} did not zoom into it: it is {:.1} px wide of the graph's {graph_width:.1} px ({clicked:?})",
        svg.display(),
        clicked.name,
        clicked.width
    );
    for other in others {
        assert!(
            other.hidden || other.width == 0.0,
            "{}: after zooming into {:?}, root frame {:?} is still shown: {other:?}",
            svg.display(),
            clicked.name,
            other.name
        );
    }
}

/// A decoded RGB(A) screenshot and how many of its pixels make a CSS pixel.
struct Screenshot {
    width: u32,
    height: u32,
    /// Bytes per pixel: 3 (RGB) or 4 (RGBA).
    channels: usize,
    pixels: Vec<u8>,
    scale: f64,
}

impl Screenshot {
    /// Decodes `png`, taken of an area `css_width` CSS pixels wide.
    fn decode(png: &[u8], css_width: f64, path: &Path) -> Self {
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder
            .read_info()
            .unwrap_or_else(|e| panic!("decoding screenshot {}: {e}", path.display()));
        let mut pixels = vec![0; reader.output_buffer_size().expect("screenshot size")];
        let info = reader
            .next_frame(&mut pixels)
            .unwrap_or_else(|e| panic!("decoding screenshot {}: {e}", path.display()));
        let channels = match (info.color_type, info.bit_depth) {
            (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
            (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
            other => panic!(
                "screenshot {} is {other:?}, not 8-bit RGB(A)",
                path.display()
            ),
        };
        Screenshot {
            width: info.width,
            height: info.height,
            channels,
            pixels,
            scale: f64::from(info.width) / css_width,
        }
    }

    /// The colour at screenshot pixel (`x`, `y`).
    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let at = (y as usize * self.width as usize + x as usize) * self.channels;
        [self.pixels[at], self.pixels[at + 1], self.pixels[at + 2]]
    }

    /// The screenshot pixels inside `frame`'s box less 2 CSS pixels of edge (the hover
    /// outline, anti-aliasing); its centre pixel alone when the box is narrower.
    fn inside(&self, frame: &FrameBox) -> Vec<(u32, u32)> {
        let span = |start: f64, len: f64, limit: u32| {
            let (lo, hi) = if len > 6.0 {
                (start + 2.0, start + len - 2.0)
            } else {
                let mid = start + len / 2.0;
                (mid, mid + 1.0 / self.scale)
            };
            let lo = (lo * self.scale).floor().max(0.0) as u32;
            let hi = ((hi * self.scale).ceil() as u32).min(limit);
            lo..hi
        };
        let xs = span(frame.x, frame.width, self.width);
        span(frame.y, frame.height, self.height)
            .flat_map(|y| xs.clone().map(move |x| (x, y)))
            .collect()
    }
}

/// Checks that at least [`MIN_FILL_SHARE`] of `frame`'s box on `shot` is its fill colour.
fn assert_drawn(shot: &Screenshot, frame: &FrameBox, path: &Path) {
    let inside = shot.inside(frame);
    let filled = inside
        .iter()
        .filter(|&&(x, y)| close(shot.pixel(x, y), frame.fill))
        .count();
    let share = filled as f64 / inside.len().max(1) as f64;
    let (cx, cy) = inside
        .get(inside.len() / 2)
        .copied()
        .unwrap_or_else(|| panic!("{}: {frame:?} lies outside the screenshot", path.display()));
    assert!(
        share >= MIN_FILL_SHARE,
        "{}: frame {:?} is not drawn: {filled} of the {} pixels in its box are its fill {:?} (the centre is {:?}); box {frame:?}",
        path.display(),
        frame.name,
        inside.len(),
        frame.fill,
        shot.pixel(cx, cy)
    );
}

/// Whether colours `a` and `b` differ by at most [`COLOUR_TOLERANCE`] in every channel.
fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter()
        .zip(b)
        .all(|(&a, b)| a.abs_diff(b) <= COLOUR_TOLERANCE)
}

/// The flame graph open in a headless Chromium, which is killed on drop.
struct FlamePage {
    tab: std::sync::Arc<Tab>,
    /// The graph's `file://` URL.
    url: String,
    /// The width of the graph's drawing area (`#frames`), in CSS pixels.
    graph_width: f64,
    /// The whole SVG's size, in CSS pixels: what screenshots take.
    size: (f64, f64),
    /// Dropped after `tab`: the browser.
    _browser: Browser,
}

/// The browser's flags beyond headless_chrome's defaults (which add --no-first-run,
/// --disable-background-networking and --disable-sync, and --no-sandbox and --disable-gpu
/// as asked below): nothing reaches out to the network, and one CSS pixel is one
/// screenshot pixel.
const FLAGS: [&str; 4] = [
    "--disable-quic",
    "--disable-component-update",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
];

impl FlamePage {
    /// Launches Chromium (as root: no sandbox; a fresh temporary profile) and opens `svg`
    /// once its script has run.
    fn open(svg: &Path) -> Self {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: install it with `cargo xtask setup`"
        );
        let svg =
            fs::canonicalize(svg).unwrap_or_else(|e| panic!("flame graph {}: {e}", svg.display()));
        let options = LaunchOptions {
            path: Some(PathBuf::from(CHROMIUM)),
            headless: true,
            sandbox: false,
            enable_gpu: false,
            window_size: Some(WINDOW),
            args: FLAGS.iter().map(OsStr::new).collect(),
            idle_browser_timeout: TIMEOUT * 3,
            ..LaunchOptions::default()
        };
        let browser = Browser::new(options)
            .unwrap_or_else(|e| panic!("launching {CHROMIUM} headless: {e:#}"));
        let tab = browser
            .new_tab()
            .unwrap_or_else(|e| panic!("opening a tab in Chromium: {e:#}"));
        tab.set_default_timeout(TIMEOUT);
        let url = file_url(&svg);
        tab.navigate_to(&url)
            .and_then(Tab::wait_until_navigated)
            .unwrap_or_else(|e| panic!("loading {url} in Chromium: {e:#}"));
        let mut page = FlamePage {
            tab,
            url,
            graph_width: 0.0,
            size: (0.0, 0.0),
            _browser: browser,
        };
        page.wait_for_script();
        page.fit_viewport();
        page
    }

    /// Waits until the graph's script has run `init()` and the work it defers (a fluid
    /// graph is laid out again to the window's width in a timeout).
    fn wait_for_script(&self) {
        let deadline = Instant::now() + TIMEOUT;
        while self.eval("typeof known_font_width") != "number" {
            assert!(
                Instant::now() < deadline,
                "{}: the flame graph's script did not run init() within {TIMEOUT:?}: is it an inferno flame graph?",
                self.url
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.eval_async("new Promise(done => setTimeout(() => done('ran'), 0))");
    }

    /// Makes the viewport tall enough for the whole graph (a deep graph's root frames are
    /// at its bottom) and notes its size.
    fn fit_viewport(&mut self) {
        let size = || -> (f64, f64, f64) {
            let size: Value = serde_json::from_str(&self.eval(
                "(() => { const s = document.documentElement.getBoundingClientRect(); \
                 const f = document.getElementById('frames').getBoundingClientRect(); \
                 return JSON.stringify([s.width, s.height, f.width]); })()",
            ))
            .expect("the page's size as JSON");
            let at = |i: usize| size[i].as_f64().expect("a size");
            (at(0), at(1), at(2))
        };
        let (_, height, _) = size();
        if height > f64::from(WINDOW.1) {
            let fit = Emulation::SetDeviceMetricsOverride {
                width: WINDOW.0,
                height: height.ceil() as u32,
                device_scale_factor: 1.0,
                mobile: false,
                scale: None,
                screen_width: None,
                screen_height: None,
                position_x: None,
                position_y: None,
                dont_set_visible_size: None,
                screen_orientation: None,
                viewport: None,
                display_feature: None,
                device_posture: None,
            };
            self.tab
                .call_method(fit)
                .unwrap_or_else(|e| panic!("growing Chromium's viewport to {height} px: {e:#}"));
            self.repainted();
        }
        let (width, height, graph_width) = size();
        self.size = (width, height);
        self.graph_width = graph_width;
    }

    /// The root frames named `names`, in that order; panics naming any that is not a root
    /// frame of the graph.
    fn root_frames(&self, names: &[&str]) -> Vec<FrameBox> {
        let json = self.eval(&format!(
            "({ROOT_FRAMES_JS})({})",
            serde_json::to_string(names).expect("names as JSON")
        ));
        let found: Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("the page's root frames {json:?}: {e}"));
        let roots: Vec<&str> = found["roots"]
            .as_array()
            .expect("roots")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let frames = found["frames"].as_array().expect("frames");
        names
            .iter()
            .zip(frames)
            .map(|(name, frame)| {
                assert!(
                    !frame.is_null(),
                    "{}: the flame graph has no root frame {name:?} (a frame right on top of `all`): its root frames are {roots:?}",
                    self.url
                );
                frame_box(frame)
            })
            .collect()
    }

    /// Clicks the middle of `frame` with the mouse and waits until the page is painted.
    fn click(&self, frame: &FrameBox) {
        let centre = Point {
            x: frame.x + frame.width / 2.0,
            y: frame.y + frame.height / 2.0,
        };
        self.tab
            .click_point(centre)
            .unwrap_or_else(|e| panic!("clicking {:?} at {centre:?}: {e:#}", frame.name));
        self.repainted();
    }

    /// Screenshots the whole graph into `path` (PNG) and decodes it.
    fn screenshot(&self, path: &Path) -> Screenshot {
        self.repainted();
        let (width, height) = self.size;
        let clip = Page::Viewport {
            x: 0.0,
            y: 0.0,
            width,
            height,
            scale: 1.0,
        };
        let png = self
            .tab
            .capture_screenshot(
                Page::CaptureScreenshotFormatOption::Png,
                None,
                Some(clip),
                true,
            )
            .unwrap_or_else(|e| panic!("taking a screenshot for {}: {e:#}", path.display()));
        fs::write(path, &png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        Screenshot::decode(&png, width, path)
    }

    /// Waits until the page has painted what was done so far (two animation frames).
    fn repainted(&self) {
        self.eval_async(
            "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done('painted'))))",
        );
    }

    /// Evaluates `js`, which must give a string, and returns it.
    fn eval(&self, js: &str) -> String {
        self.evaluate(js, false)
    }

    /// Evaluates `js`, a promise of a string, and returns the string once it settles.
    fn eval_async(&self, js: &str) -> String {
        self.evaluate(js, true)
    }

    /// Evaluates `js` (awaiting it if `await_promise`), which must give a string.
    fn evaluate(&self, js: &str, await_promise: bool) -> String {
        let result = self
            .tab
            .evaluate(js, await_promise)
            .unwrap_or_else(|e| panic!("evaluating {js:?} in Chromium: {e:#}"));
        match result.value {
            Some(Value::String(s)) => s,
            _ => panic!(
                "evaluating {js:?} in Chromium gave no string: {:?}",
                result.description.unwrap_or_default()
            ),
        }
    }
}

/// The `file://` URL of the absolute path `path`, its bytes outside `A-Za-z0-9/-._~`
/// percent-encoded.
fn file_url(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    path.as_os_str()
        .as_bytes()
        .iter()
        .fold(String::from("file://"), |mut url, &b| {
            if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
                url.push(char::from(b));
            } else {
                url.push_str(&format!("%{b:02X}"));
            }
            url
        })
}

/// A [`FrameBox`] from what [`ROOT_FRAMES_JS`] gives for one frame.
fn frame_box(frame: &Value) -> FrameBox {
    let num = |key: &str| {
        frame[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in {frame}"))
    };
    let text = |key: &str| {
        frame[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {frame}"))
            .to_owned()
    };
    let fill = frame["fill"]
        .as_array()
        .filter(|c| c.len() == 3)
        .unwrap_or_else(|| panic!("the fill of {frame} is not an rgb() colour"));
    let channel = |i: usize| {
        fill[i]
            .as_u64()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or_else(|| panic!("the fill of {frame}"))
    };
    FrameBox {
        name: text("name"),
        title: text("title"),
        x: num("x"),
        y: num("y"),
        width: num("width"),
        height: num("height"),
        fill: [channel(0), channel(1), channel(2)],
        hidden: frame["hidden"]
            .as_bool()
            .unwrap_or_else(|| panic!("hidden in {frame}")),
    }
}

/// A JavaScript function of a list of names giving, as JSON, `roots` (the names of the
/// root frames: the row of frames nearest to `all`'s) and `frames`: for each name, that
/// root frame's title, rectangle box (from getBoundingClientRect), fill and whether it is
/// hidden, or null when there is no such root frame.
const ROOT_FRAMES_JS: &str = r#"function (names) {
    const frames = Array.from(document.getElementById("frames").children).map(g => {
        const title = g.querySelector("title").textContent;
        const cut = title.lastIndexOf(" (");
        return { g, title, name: cut < 0 ? title : title.slice(0, cut), rect: g.querySelector("rect") };
    });
    const all = frames.find(f => f.name === "all");
    if (!all) throw new Error("the flame graph has no `all` frame");
    const allY = parseFloat(all.rect.getAttribute("y"));
    const distance = f => Math.abs(parseFloat(f.rect.getAttribute("y")) - allY);
    const nearest = Math.min(...frames.filter(f => f !== all).map(distance));
    const roots = frames.filter(f => f !== all && distance(f) === nearest);
    const describe = f => {
        const box = f.rect.getBoundingClientRect();
        const fill = getComputedStyle(f.rect).fill.match(/\d+/g).map(Number);
        return {
            name: f.name, title: f.title, x: box.x, y: box.y, width: box.width, height: box.height,
            fill, hidden: getComputedStyle(f.g).display === "none",
        };
    };
    return JSON.stringify({
        roots: roots.map(f => f.name),
        frames: names.map(name => {
            const f = roots.find(f => f.name === name);
            return f ? describe(f) : null;
        }),
    });
}"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// Folded stacks shaped like apiprof's: one root frame per client, and the runtime's
    /// own work under "(background)".
    const FOLDED: [&str; 4] = [
        "clientA;list;pods;main.serve;runtime.mallocgc 30",
        "clientA;watch;pods;main.serve 5",
        "clientB;get;pods;main.serve 10",
        "(background);runtime.gcBgMarkWorker 5",
    ];

    #[test]
    fn flamegraph_draws_root_frames_and_zooms_on_click() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let svg = dir.path().join("flame.svg");
        let out = fs::File::create(&svg).expect("creating the SVG");
        inferno::flamegraph::from_lines(
            &mut inferno::flamegraph::Options::default(),
            FOLDED.iter().copied(),
            out,
        )
        .expect("inferno writes the flame graph");

        let view = check_flamegraph(
            &svg,
            &["clientA", "clientB", "(background)"],
            &dir.path().join("flame.png"),
        );

        let names: Vec<&str> = view.opened.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["clientA", "clientB", "(background)"]);
        assert!(view.opened[0].title.starts_with("clientA (35 samples"));
        assert!(view.opened[0].width > view.opened[1].width);
        assert!(view.zoomed_screenshot.ends_with("flame-zoomed.png"));
        assert!(view.zoomed_screenshot.exists());
    }
}
