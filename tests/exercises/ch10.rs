//! Chapter 10: benchmarks. Each Try's command, scaled down (short windows, few
//! connections) so the test stays short: the columns and the lines the chapter tells the
//! reader to look at are there, and the figures are consistent with each other.

use crate::exercise::{looplab, run_to_end_of, says};
use std::time::Duration;

const CH: &str = "docs/10-benchmarks.md";
const LIMIT: Duration = Duration::from_secs(120);

fn out_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("looplab-ex10-{name}-{}", std::process::id()))
}

/// Try 1: rounds with and without pinning; the table's spread column, the JSON's range.
#[test]
fn try_1_rounds_show_their_spread() {
    says(CH, "--conns 100 --rounds 3 --no-pin");
    for pin in [true, false] {
        let out = out_dir(if pin { "pin" } else { "nopin" });
        let dir = out.to_string_lossy().into_owned();
        let mut args = vec![
            "bench",
            "--servers",
            "threads,epoll",
            "--conns",
            "20",
            "--rounds",
            "2",
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
            "--out",
            &dir,
        ];
        if !pin {
            args.push("--no-pin");
        }
        let run = run_to_end_of(looplab(), &args, LIMIT);
        let table = run.stdout();
        assert!(table.contains("median of 2 round(s)"), "{table}");
        assert!(table.contains(" spread "), "{table}");
        assert_eq!(table.contains("not pinned"), !pin, "{table}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
                .unwrap();
        for row in json["rows"].as_array().unwrap() {
            let f = |k: &str| row[k].as_f64().unwrap();
            assert_eq!(f("rounds"), 2.0, "{row}");
            assert!(
                f("rt_per_s_min") <= f("rt_per_s") && f("rt_per_s") <= f("rt_per_s_max"),
                "{row}"
            );
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// Try 2: the max column, the longest wait for one echo, at least the p99.
#[test]
fn try_2_max_ms_is_the_longest_wait() {
    says(CH, "and look at\n   `max ms`");
    let out = out_dir("max");
    let dir = out.to_string_lossy().into_owned();
    let run = run_to_end_of(
        looplab(),
        &[
            "bench",
            "--servers",
            "threads",
            "--conns",
            "200",
            "--rounds",
            "1",
            "--duration",
            "300ms",
            "--warmup",
            "100ms",
            "--out",
            &dir,
        ],
        LIMIT,
    );
    assert!(run.stdout().contains("max ms"), "{}", run.stdout());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let row = &json["rows"][0];
    assert!(row["max_ms"].as_f64() >= row["p99_ms"].as_f64(), "{row}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// Try 3: what a held poll costs, with a few hundred instead of ten thousand.
#[test]
fn try_3_held_polls_cost_memory_and_one_publish_answers_them() {
    says(CH, "`cargo run --release -- bench --waiters 10000`");
    let run = run_to_end_of(looplab(), &["bench", "--waiters", "200", "--no-pin"], LIMIT);
    let out = run.stdout();
    assert!(
        out.contains("long-poll: 200 held polls on one `looplab longpoll` process"),
        "{out}"
    );
    assert!(out.contains("KiB per held poll"), "{out}");
    assert!(out.contains("(200 answered"), "{out}");
}

/// The published figure: README's caption gives the command docs/benchmarks.md gives, the
/// SVG is what that run's results.json draws (a replot of it is byte for byte the same),
/// and the caption's figures are that run's.
#[test]
fn the_published_plot_is_its_results_and_its_caption() {
    let command = "cargo run --release -- bench --out docs/img";
    says("README.md", command);
    says("docs/benchmarks.md", command);
    let out = out_dir("replot");
    std::fs::create_dir_all(&out).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img");
    std::fs::copy(root.join("results.json"), out.join("results.json")).unwrap();
    let dir = out.to_string_lossy().into_owned();
    run_to_end_of(looplab(), &["bench", "--replot", "--out", &dir], LIMIT);
    let drawn = std::fs::read_to_string(out.join("echo.svg")).unwrap();
    let published = std::fs::read_to_string(root.join("echo.svg")).unwrap();
    assert!(drawn == published, "docs/img/echo.svg is not what docs/img/results.json draws: run `looplab bench --replot --out docs/img`");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let row = |server: &str| {
        json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["server"] == server && r["conns"] == 5000)
            .cloned()
            .unwrap_or_else(|| panic!("no {server} row at 5000"))
    };
    let (threads, epoll) = (row("threads"), row("epoll"));
    let mib = |r: &serde_json::Value| r["peak_rss_kib"].as_f64().unwrap() / 1024.0;
    let krt = |r: &serde_json::Value| r["rt_per_s"].as_f64().unwrap() / 1000.0;
    let caption = format!(
        "held up to {} threads and {:.0} MiB, {:.0} k round trips a second with a p99 of {:.0} ms; the epoll loop held one loop thread (and one pool thread) and {:.1} MiB, {:.0} k round trips a second with a p99 of {:.0} ms",
        threads["threads"],
        mib(&threads),
        krt(&threads),
        threads["p99_ms"].as_f64().unwrap(),
        mib(&epoll),
        krt(&epoll),
        epoll["p99_ms"].as_f64().unwrap()
    );
    says("README.md", &caption);
    std::fs::remove_dir_all(&out).unwrap();
}
