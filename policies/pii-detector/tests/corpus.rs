//! Recall and false-positive rate on the fixture corpus (numbers reported in the README).
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

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

#[derive(serde::Deserialize)]
struct FakerCorpus {
    positives: Vec<Positive>,
    negatives: Vec<Negative>,
}

/// The Faker corpus (fixtures/make_corpus.py: seven locales, hard negatives). Targets: at least
/// 98% recall for every kind, at most 0.5% false positives. The README and the bench report
/// these numbers beside Presidio's on the same corpus (fixtures/score_presidio.py).
#[test]
fn faker_corpus_recall_per_kind_and_false_positives() {
    let corpus: FakerCorpus =
        serde_json::from_str(include_str!("../fixtures/faker-corpus.json")).unwrap();
    let mut report = String::new();
    let mut failures = Vec::new();
    for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Term) {
        let cases: Vec<&Positive> = corpus
            .positives
            .iter()
            .filter(|p| p.kind == kind.name())
            .collect();
        let missed: Vec<&str> = cases
            .iter()
            .filter(|p| !scan(&p.text, Kinds::all(), &[]).contains(kind))
            .map(|p| p.text.as_str())
            .collect();
        let recall = 1.0 - missed.len() as f64 / cases.len() as f64;
        report.push_str(&format!(
            "{:6} recall {}/{} ({:.1}%)\n",
            kind.name(),
            cases.len() - missed.len(),
            cases.len(),
            recall * 100.0
        ));
        if recall < 0.98 {
            failures.push(format!("{} recall {recall:.3}: {missed:#?}", kind.name()));
        }
    }
    let false_positives: Vec<&str> = corpus
        .negatives
        .iter()
        .filter(|n| !scan(&n.text, Kinds::all(), &[]).is_empty())
        .map(|n| n.text.as_str())
        .collect();
    let fpr = false_positives.len() as f64 / corpus.negatives.len() as f64;
    report.push_str(&format!(
        "false positives {}/{} ({:.2}%)\n",
        false_positives.len(),
        corpus.negatives.len(),
        fpr * 100.0
    ));
    eprintln!("{report}false positives: {false_positives:#?}");
    if fpr > 0.005 {
        failures.push(format!(
            "false-positive rate {fpr:.4}: {false_positives:#?}"
        ));
    }
    assert!(failures.is_empty(), "{report}\n{}", failures.join("\n"));
}
