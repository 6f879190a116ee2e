//! Recall and false-positive rate on the fixture corpus (numbers reported in the README).

use llmkube_pii_detector::PiiDetector;
use llmkube_pii_detector::scan::{Kind, Kinds, scan};
use llmkube_policy_sdk::testing::run_fixtures;

#[derive(serde::Deserialize)]
struct Corpus {
    positives: Vec<Positive>,
    negatives: Vec<Negative>,
}

#[derive(serde::Deserialize)]
struct Positive {
    kind: String,
    text: String,
}

#[derive(serde::Deserialize)]
struct Negative {
    text: String,
}

#[test]
fn recall_and_false_positive_rate() {
    let corpus: Corpus = serde_json::from_str(include_str!("../fixtures/corpus.json")).unwrap();
    let terms = vec!["project falcon".to_owned()];
    let mut report = String::new();
    let mut missed = Vec::new();
    for kind in Kind::ALL {
        let cases: Vec<&Positive> = corpus
            .positives
            .iter()
            .filter(|p| p.kind == kind.name())
            .collect();
        let hits = cases
            .iter()
            .filter(|p| scan(&p.text, Kinds::all(), &terms).contains(kind))
            .count();
        missed.extend(
            cases
                .iter()
                .filter(|p| !scan(&p.text, Kinds::all(), &terms).contains(kind))
                .map(|p| p.text.clone()),
        );
        report.push_str(&format!(
            "{:6} recall {hits}/{}\n",
            kind.name(),
            cases.len()
        ));
    }
    let false_positives: Vec<&str> = corpus
        .negatives
        .iter()
        .filter(|n| !scan(&n.text, Kinds::all(), &terms).is_empty())
        .map(|n| n.text.as_str())
        .collect();
    report.push_str(&format!(
        "false positives {}/{}\n",
        false_positives.len(),
        corpus.negatives.len()
    ));
    eprintln!("{report}");
    let recall = 1.0 - missed.len() as f64 / corpus.positives.len() as f64;
    let fpr = false_positives.len() as f64 / corpus.negatives.len() as f64;
    assert!(recall >= 0.97, "recall {recall:.3}; missed: {missed:#?}");
    assert!(
        fpr <= 0.03,
        "false-positive rate {fpr:.3}: {false_positives:#?}"
    );
}

#[test]
fn decision_fixtures_pass_natively() {
    let n = run_fixtures::<PiiDetector>(include_str!("../fixtures/decisions.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 5);
}
