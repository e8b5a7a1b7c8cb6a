//! Pk and WindowDiff against segeval 2.0.11's published and computed values
//! (`fixtures/segeval_cases.json`, its README and licence beside it).

use trellis_atomizer::eval::{pk, window_diff};

#[test]
fn our_metrics_give_segevals_values() {
    let text = include_str!("fixtures/segeval_cases.json");
    let cases: serde_json::Value = serde_json::from_str(text).expect("the fixture is JSON");
    let cases = cases["cases"].as_array().expect("cases");
    assert!(cases.len() >= 80);
    let masses = |v: &serde_json::Value| -> Vec<usize> {
        v.as_array()
            .expect("masses")
            .iter()
            .map(|m| m.as_u64().expect("mass") as usize)
            .collect()
    };
    for case in cases {
        let (h, r) = (masses(&case["hypothesis"]), masses(&case["reference"]));
        let window = case["window_size"].as_u64().map(|k| k as usize);
        let option = |name: &str| case["options"][name].as_bool().unwrap_or(false);
        let mut value = match case["metric"].as_str() {
            Some("pk") => pk(&h, &r, window),
            Some("window_diff") => window_diff(&h, &r, window, option("lamprier_et_al_2007_fix")),
            other => panic!("unknown metric {other:?}"),
        };
        if option("one_minus") {
            value = 1.0 - value;
        }
        let expected: f64 = case["expected"]
            .as_str()
            .expect("expected")
            .parse()
            .expect("a number");
        assert!(
            (value - expected).abs() < 1e-9,
            "{}: {value} != {expected}",
            case["name"]
        );
    }
}
