//! The README's transition diagram is generated from the code's table: they must agree.

const README: &str = include_str!("../README.md");

fn mermaid_block(text: &str) -> Option<String> {
    let start = text.find("```mermaid\n")? + "```mermaid\n".len();
    let len = text[start..].find("```")?;
    Some(text[start..start + len].to_owned())
}

#[test]
fn readme_diagram_matches_the_transition_table() {
    let mut generated = String::new();
    paystate::diagram::write_mermaid(&mut generated).unwrap();
    let in_readme = mermaid_block(README).expect("the README has a mermaid block");
    assert_eq!(
        in_readme, generated,
        "README.md's diagram is out of date; replace it with:\n{generated}"
    );
}

#[test]
fn the_diagram_has_every_status_and_no_edge_out_of_refunded() {
    let mut edges = Vec::new();
    paystate::diagram::for_each_edge(|e| edges.push(e));
    for status in paystate::Status::ALL {
        let reached = edges.iter().any(|e| e.to == status) || status == paystate::Status::Pending;
        assert!(reached, "{status} is unreachable");
    }
    assert!(edges.iter().all(|e| e.from != paystate::Status::Refunded));
    assert!(
        edges.iter().all(|e| e.to.rank() >= e.from.rank()),
        "rank never decreases"
    );
}
