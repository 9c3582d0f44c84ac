"""BIF <-> graph-file data, and the YAML text writer, on the bnlearn networks and hand-made snippets."""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import pytest
import yaml

import pgm
from pgm.errors import ModelError
from pgm.io.bif import read_bif, write_bif
from pgm.io.yaml_text import dump_spec_yaml, scalar
from pgm.schema import parse_spec, read_yaml

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
NETWORKS = {"asia": 8, "cancer": 5, "earthquake": 5, "survey": 6, "sachs": 11, "alarm": 37}

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="the shared reference data is not beside the repo")


def read_network(name: str) -> dict:
    path = DATA / f"{name}.bif"
    return read_bif(path.read_text(), str(path))


@pytest.fixture(scope="module")
def networks() -> dict[str, dict]:
    if not DATA.is_dir():
        pytest.skip("the shared reference data is not beside the repo")
    return {name: read_network(name) for name in NETWORKS}


# ------------------------------------------------------------------ the reference networks


@needs_data
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_networks_parse_with_their_node_counts(networks, name):
    data = networks[name]
    assert data["name"] == name  # the files say `network unknown`: the file stem names them
    assert data["graph"] == "directed"
    assert len(data["nodes"]) == NETWORKS[name]
    assert set(data["params"]) == set(data["nodes"])
    spec = parse_spec(data, name)
    assert len(spec.nodes) == NETWORKS[name]
    for node, block in data["params"].items():
        states = data["nodes"][node]["states"]
        parents = data["nodes"][node].get("parents", [])
        table = block["table"]
        if not parents:
            assert len(table) == len(states) and all(isinstance(p, float) for p in table)
            rows = [table]
        else:
            assert len(table) == math.prod(len(data["nodes"][p]["states"]) for p in parents)
            rows = table
        for row in rows:
            assert len(row) == len(states)
            assert abs(math.fsum(row) - 1) <= 1e-6


@needs_data
def test_asia_entries_match_the_text(networks):
    asia = networks["asia"]
    assert asia["nodes"]["asia"] == {"states": ["yes", "no"]}
    assert asia["nodes"]["either"] == {"states": ["yes", "no"], "parents": ["lung", "tub"]}
    assert asia["params"]["asia"]["table"] == [0.01, 0.99]
    tub = asia["params"]["tub"]["table"]
    assert tub[0][0] == 0.05  # p(tub=yes | asia=yes)
    assert tub == [[0.05, 0.95], [0.01, 0.99]]
    # `either` is a logical OR of (lung, tub): rows in C order over (lung, tub)
    assert asia["params"]["either"]["table"] == [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    # dysp | bronc, either: the file lists (yes,yes) (no,yes) (yes,no) (no,no); rows go (yes,yes) (yes,no) ...
    assert asia["params"]["dysp"]["table"] == [[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9]]


@needs_data
def test_alarm_nodes_with_three_and_four_parents(networks):
    alarm = networks["alarm"]
    assert alarm["nodes"]["PRESS"]["parents"] == ["INTUBATION", "KINKEDTUBE", "VENTTUBE"]
    press = alarm["params"]["PRESS"]["table"]  # 3 x 2 x 4 configurations, VENTTUBE fastest
    assert len(press) == 24
    assert press[0] == [0.97, 0.01, 0.01, 0.01]  # (NORMAL, TRUE, ZERO)
    assert press[1] == [0.05, 0.25, 0.25, 0.45]  # (NORMAL, TRUE, LOW)
    assert press[1 * 8 + 1 * 4 + 1] == [0.01, 0.01, 0.08, 0.90]  # (ESOPHAGEAL, FALSE, LOW)
    assert press[2 * 8 + 0 * 4 + 3] == [0.97, 0.01, 0.01, 0.01]  # (ONESIDED, TRUE, HIGH)
    catechol = alarm["params"]["CATECHOL"]["table"]  # ARTCO2(3) INSUFFANESTH(2) SAO2(3) TPR(3)
    assert alarm["nodes"]["CATECHOL"]["parents"] == ["ARTCO2", "INSUFFANESTH", "SAO2", "TPR"]
    assert catechol[1 * 18 + 1 * 9 + 2 * 3 + 1] == [0.05, 0.95]  # (NORMAL, FALSE, HIGH, NORMAL)
    assert catechol[2 * 18 + 0 * 9 + 1 * 3 + 2] == [0.1, 0.9]  # (HIGH, TRUE, NORMAL, HIGH)


@needs_data
def test_survey_rows_are_mapped_by_their_labels(networks):
    t = networks["survey"]["params"]["T"]["table"]  # T | O, R; the file lists (emp,small) (self,small) ...
    assert t == [[0.48, 0.42, 0.10], [0.58, 0.24, 0.18], [0.56, 0.36, 0.08], [0.70, 0.21, 0.09]]


@needs_data
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_read_write_read_is_identical(networks, name):
    data = networks[name]
    text = write_bif(data)
    again = read_bif(text)
    assert again == data
    assert write_bif(again) == text


@needs_data
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_yaml_text_reads_back_exactly(networks, name):
    data = networks[name]
    text = dump_spec_yaml(data)
    back, _ = read_yaml(text)
    assert back == data
    assert yaml.safe_load(text) == data  # plain PyYAML (YAML 1.1 booleans) agrees
    parse_spec(back, name)


@needs_data
def test_yaml_layout(networks):
    text = dump_spec_yaml({**networks["asia"], "description": "Lauritzen and Spiegelhalter's chest clinic."})
    lines = text.splitlines()
    tops = [line.split(":")[0] for line in lines if line and not line.startswith((" ", "#"))]
    assert tops == ["name", "graph", "description", "nodes", "params"]
    assert "  either: {states: ['yes', 'no'], parents: [lung, tub]}" in lines
    assert "      - [1.0, 0.0]  # lung=yes, tub=yes" in lines
    assert "    table: [0.01, 0.99]" in lines


@needs_data
@pytest.mark.parametrize("name", ["asia", "alarm", "ecoli70"])
def test_generated_models_load(name):
    model = pgm.load(REPO / "models" / f"{name}.yaml")
    data, _ = read_yaml((REPO / "models" / f"{name}.yaml").read_text())
    assert "params" not in data and data["description"]
    if name == "ecoli70":
        from pgm.io.bnlearn_json import read_bnlearn_json

        source = read_bnlearn_json((DATA / "ecoli70.json").read_text(), "ecoli70.json")
    else:
        source = read_network(name)
    assert data["nodes"] == source["nodes"]
    assert len(model.nodes) == len(source["nodes"])


# ------------------------------------------------------------------ the BIF dialects

DOG = """\
network "Dog-Problem" { //5 variables and 5 probability distributions
}
variable "light-on" { //2 values
    type discrete[2] { "true" "false" };
    property "position = (218, 195)" ;
}
variable "bowel-problem" { //2 values
    type discrete[2] { "true" "false" };
    property "position = (335, 99)" ;
}
variable "dog-out" { //2 values
    type discrete[2] { "true" "false" };
    property "position = (300, 195)" ;
}
variable "hear-bark" { //2 values
    type discrete[2] { "true" "false" };
}
variable "family-out" { //2 values
    type discrete[2] { "true" "false" };
}
probability ( "light-on" "family-out" ) { //2 variable(s) and 4 values
    table 0.6 0.05 0.4 0.95 ;
}
probability ( "bowel-problem" ) { //1 variable(s) and 2 values
    table 0.01 0.99 ;
}
probability ( "dog-out" "bowel-problem" "family-out" ) { //3 variable(s) and 8 values
    table 0.99 0.97 0.9 0.3 0.01 0.03 0.1 0.7 ;
}
probability ( "hear-bark" "dog-out" ) { //2 variable(s) and 4 values
    table 0.7 0.01 0.3 0.99 ;
}
probability ( "family-out" ) { //1 variable(s) and 2 values
    table 0.15 0.85 ;
}
"""


def test_javabayes_style_and_table_order():
    """`table` lists the child's first state across all parent configurations first."""
    data = read_bif(DOG, "dog.bif")
    assert data["name"] == "Dog-Problem"
    assert data["nodes"]["dog-out"] == {"states": ["true", "false"], "parents": ["bowel-problem", "family-out"]}
    # P(dog-out=true | bowel, family): (T,T) .99, (T,F) .97, (F,T) .9, (F,F) .3 (Charniak's dog problem)
    assert data["params"]["dog-out"]["table"] == [[0.99, 0.01], [0.97, 0.03], [0.9, 0.1], [0.3, 0.7]]
    assert data["params"]["light-on"]["table"] == [[0.6, 0.4], [0.05, 0.95]]
    assert read_bif(write_bif(data)) == data


def test_table_and_rows_give_the_same_cpt():
    head = """network n {}
variable a { type discrete [ 2 ] { a0, a1 }; }
variable b { type discrete [ 3 ] { b0, b1, b2 }; }
variable c { type discrete [ 2 ] { c0, c1 }; }
probability ( a ) { table 0.5, 0.5; }
probability ( b ) { table 0.2, 0.3, 0.5; }
"""
    rows = head + """probability ( c | a, b ) {
  (a1, b2) 0.6, 0.4;
  (a0, b0) 0.1, 0.9;
  (a1, b0) 0.4, 0.6;
  (a0, b2) 0.3, 0.7;
  (a0, b1) 0.2, 0.8;
  (a1, b1) 0.5, 0.5;
}
"""
    table = head + "probability ( c | a, b ) { table 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4; }\n"
    expected = [[0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6], [0.5, 0.5], [0.6, 0.4]]
    assert read_bif(rows)["params"]["c"]["table"] == expected
    assert read_bif(table)["params"]["c"]["table"] == expected


def test_default_fills_the_missing_rows():
    text = """network d { property author = "someone"; }
variable a { type discrete [ 3 ] { x, y, z }; }
variable b { type discrete [ 2 ] { on, off }; }
probability ( a ) { table 0.2, 0.3, 0.5; }
probability ( b | a ) {
  default 0.5, 0.5;
  (y) 0.9, 0.1;
}
"""
    data = read_bif(text)
    assert data["params"]["b"]["table"] == [[0.5, 0.5], [0.9, 0.1], [0.5, 0.5]]
    assert read_bif(write_bif(data)) == data


def test_comments_properties_and_odd_names():
    text = """/* a block comment
   over two lines */
network odd-net.v2 {
  property "version" = 1 ;
}
// a line comment
variable Chest.Xray-2 {
  property label = "chest x-ray" ;
  type discrete [ 4 ] { Normal, Asy/Patchy, "Grd Glass", 3 };
}
variable Lower_O2 { type discrete [ 3 ] { <5, 5-12, 12+ }; }
variable CO2 { type discrete [ 2 ] { <7.5, >=7.5 }; }
probability ( Lower_O2 ) { table 0.2, 0.5, 0.3; }  // trailing comment
probability ( CO2 ) { table 1e-05, 0.99999; }
probability ( Chest.Xray-2 | Lower_O2, CO2 ) {
  (<5, <7.5) 0.1, 0.2, 0.3, 0.4;
  (<5, >=7.5) 0.25, 0.25, 0.25, 0.25;
  (5-12, <7.5) 1, 0, 0, 0;
  (5-12, >=7.5) .5, .5, 0, 0;
  (12+, <7.5) 0, 0, 0, 1;
  (12+, >=7.5) 7.0e-01, 1E-1, 0.1, 0.1;
}
"""
    data = read_bif(text, "odd.bif")
    assert data["name"] == "odd-net.v2"
    assert data["nodes"]["Chest.Xray-2"]["states"] == ["Normal", "Asy/Patchy", "Grd Glass", "3"]
    assert data["nodes"]["Lower_O2"]["states"] == ["<5", "5-12", "12+"]
    assert data["params"]["CO2"]["table"] == [1e-05, 0.99999]
    assert data["params"]["Chest.Xray-2"]["table"][3] == [0.5, 0.5, 0.0, 0.0]
    assert data["params"]["Chest.Xray-2"]["table"][5] == [0.7, 0.1, 0.1, 0.1]
    written = write_bif(data)
    assert "{ Normal, Asy/Patchy, Grd Glass, 3 }" in written
    assert read_bif(written) == data
    back, _ = read_yaml(dump_spec_yaml(data))
    assert back == data


def test_bnlearn_dialect_names_with_spaces():
    """bnlearn's reader splits states and parent lists at commas, so a name may hold spaces."""
    text = """network Chest Clinic {
}
variable Chest Xray {
  type discrete [ 2 ] { Grd Glass, Normal };
}
variable sick {
  type discrete [ 2 ] { yes, no };
}
probability ( Chest Xray ) {
  table 0.3, 0.7;
}
probability ( sick | Chest Xray ) {
  (Grd Glass) 0.9, 0.1;
  (Normal) 0.2, 0.8;
}
"""
    data = read_bif(text)
    assert data["name"] == "Chest Clinic"
    assert data["nodes"] == {"Chest Xray": {"states": ["Grd Glass", "Normal"]},
                             "sick": {"states": ["yes", "no"], "parents": ["Chest Xray"]}}
    assert data["params"]["sick"]["table"] == [[0.9, 0.1], [0.2, 0.8]]
    assert read_bif(write_bif(data)) == data


def test_rounded_rows_are_renormalised_with_a_warning():
    text = """network r {}
variable a { type discrete [ 3 ] { x, y, z }; }
variable b { type discrete [ 2 ] { t, f }; }
probability ( a ) { table 0.3333333, 0.3333333, 0.3333333; }
probability ( b | a ) {
  (x) 0.4996, 0.5;
  (y) 0.1, 0.9;
  (z) 0.5000004, 0.5;
}
"""
    with pytest.warns(UserWarning, match=r"renormalised 1 probability row.*line 6"):
        data = read_bif(text, "r.bif")
    assert data["params"]["a"]["table"] == [0.3333333, 0.3333333, 0.3333333]  # within 1e-6: as written
    assert data["params"]["b"]["table"][2] == [0.5000004, 0.5]
    row = data["params"]["b"]["table"][0]
    assert row == [0.4996 / 0.9996, 0.5 / 0.9996]
    assert abs(math.fsum(row) - 1) < 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_bif(write_bif(data)) == data  # once renormalised, read back silently


MALFORMED = [
    # (text, line, words the message must hold)
    ("network n {}\nvariable a { type discrete [ 2 ] { x, y }; }\nprobability ( b ) { table 0.5, 0.5; }\n",
     3, ["unknown variable 'b'"]),
    ("network n {}\nvariable a { type discrete [ 2 ] { x, y }; }\nprobability ( a | c ) {\n  (x) 0.5, 0.5;\n}\n",
     3, ["parent 'c'"]),
    ("network n {}\nvariable a { type discrete [ 2 ] { x, y }; }\nprobability ( a ) {\n  table 0.2, 0.3, 0.5;\n}\n",
     4, ["lists 3 probabilities", "2 states"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nvariable b { type discrete [ 2 ] { u, v }; }\n"
     "probability ( a ) { table 0.5, 0.5; }\nprobability ( b | a ) {\n  (x) 0.5, 0.5;\n}\n",
     4, ["no row for (y)", "default"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nvariable b { type discrete [ 2 ] { u, v }; }\n"
     "probability ( a ) { table 0.5, 0.5; }\nprobability ( b | a ) {\n  (x) 0.5, 0.5;\n  (yy) 0.5, 0.5;\n}\n",
     6, ["state 'yy'", "did you mean 'y'"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nvariable b { type discrete [ 2 ] { u, v }; }\n"
     "probability ( a ) { table 0.5, 0.5; }\nprobability ( b | a ) {\n  (x) 0.5, 0.5;\n  (x) 0.4, 0.6;\n}\n",
     6, ["given twice", "line 5"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nvariable b { type discrete [ 2 ] { u, v }; }\n"
     "probability ( a ) { table 0.5, 0.5; }\nprobability ( b | a ) {\n  (x, y) 0.5, 0.5;\n}\n",
     5, ["names 2 parent state(s)", "1 parent(s)"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nprobability ( a ) {\n  table 0.5, 0.5\n}\n",
     3, ["no closing `;`"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nprobability ( a ) {\n  table 0.5, abc;\n}\n",
     3, ["not a number"]),
    ("variable a { type discrete [ 3 ] { x, y }; }\nprobability ( a ) { table 0.5, 0.5; }\n",
     1, ["[ 3 ]", "lists 2"]),
    ("variable a { type discrete [ 2 ] { x, x }; }\n", 1, ["state 'x' twice"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\n\nvariable a { type discrete [ 2 ] { x, y }; }\n",
     3, ["declared twice", "line 1"]),
    ("network n {}\nvariable a { type discrete [ 2 ] { x, y }; }\n", 2, ["no `probability` block"]),
    ("variable a { type continuous; }\n", 1, ["only discrete"]),
    ("variable a {\n  type discrete [ 2 ] { x, y };\n", 2, ["ends inside"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\n/* unclosed\nprobability ( a ) { table 0.5, 0.5; }\n",
     2, ["never closed"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nprobability ( a ) { table 0.5, 0.5; }\nbogus\n",
     3, ["unexpected `bogus`"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nprobability ( a ) {\n  table 0.5, 0.4;\n}\n",
     3, ["sums to 0.9", "not 1"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nprobability ( a ) {\n  table 1.5, -0.5;\n}\n",
     3, ["outside [0, 1]"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nvariable b { type discrete [ 2 ] { x, y }; }\n"
     "probability ( a | b ) { (x) 0.5, 0.5; (y) 0.5, 0.5; }\nprobability ( b | a ) {\n (x) 0.5, 0.5; (y) 0.5, 0.5; }\n",
     None, ["directed cycle", "acyclic"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nvariable b { type discrete [ 2 ] { u, v }; }\n"
     "probability ( a ) { table 0.5, 0.5; }\n"
     "probability ( b | a ) {\n  table 0.5, 0.5, 0.5, 0.5;\n  (x) 0.5, 0.5;\n}\n",
     6, ["a `table` and other entries"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nvariable b { type discrete [ 2 ] { u, v }; }\n"
     "probability ( a ) { table 0.5, 0.5; }\nprobability ( b | a ) {\n  table 0.5, 0.5, 0.5;\n}\n",
     5, ["lists 3 probabilities", "2 x 2 = 4"]),
    ("variable a { type discrete [ 2 ] { x, y }; }\nprobability ( a ) { table 0.5, 0.5; }\n"
     "probability ( a ) { table 0.5, 0.5; }\n", 3, ["two `probability` blocks"]),
    ("", 0, ["empty"]),
]


@pytest.mark.parametrize("text,line,words", MALFORMED, ids=[f"case{i}" for i in range(len(MALFORMED))])
def test_malformed_bif_gives_a_located_model_error(text, line, words):
    with pytest.raises(ModelError) as info:
        read_bif(text, "bad.bif")
    message = str(info.value)
    if line:
        assert message.startswith(f"bad.bif:{line}: "), message
    else:
        assert message.startswith("bad.bif"), message
    for word in words:
        assert word in message, message
    assert ";" in message  # what is wrong; how to fix it


# ------------------------------------------------------------------ writing


def test_write_bif_refuses_what_bif_cannot_hold():
    base = {"name": "m", "graph": "directed",
            "nodes": {"a": {"states": ["x", "y"]}, "g": {"type": "gaussian", "parents": ["a"]}},
            "params": {"a": {"table": [0.5, 0.5]}, "g": {"intercept": [0.0, 1.0], "coef": [], "covariance": 1.0}}}
    with pytest.raises(ModelError, match="'g' is a gaussian node"):
        write_bif(base)
    no_params = {"name": "m", "nodes": {"a": {"states": ["x", "y"]}}}
    with pytest.raises(ModelError, match="no `params`"):
        write_bif(no_params)
    missing = {"name": "m", "nodes": {"a": {"states": ["x", "y"]}, "b": {"states": 2, "parents": ["a"]}},
               "params": {"a": {"table": [0.5, 0.5]}}}
    with pytest.raises(ModelError, match="node 'b' has no table"):
        write_bif(missing)
    short = {**missing, "params": {"a": {"table": [0.5, 0.5]}, "b": {"table": [[0.5, 0.5]]}}}
    with pytest.raises(ModelError, match="should hold 2 rows"):
        write_bif(short)
    with pytest.raises(ModelError, match="undirected"):
        write_bif({"name": "u", "graph": "undirected", "nodes": {"a": {"states": 2}}, "params": {}})


def test_write_bif_from_yaml_data_with_counted_states():
    text = """
name: tiny
graph: directed
description: two coins
nodes:
  a: {states: 2}
  b: {states: [-1, 1], parents: [a]}
params:
  a:
    table: [1, 0]
  b:
    table:
      - [0.25, 0.75]
      - [0.5, 0.5]
"""
    data, _ = read_yaml(text)
    parse_spec(data)
    bif = write_bif(data)
    assert bif.startswith("// two coins\nnetwork tiny {")
    back = read_bif(bif)
    assert back["nodes"] == {"a": {"states": ["0", "1"]}, "b": {"states": ["-1", "1"], "parents": ["a"]}}
    assert back["params"] == {"a": {"table": [1.0, 0.0]}, "b": {"table": [[0.25, 0.75], [0.5, 0.5]]}}


def test_floats_round_trip_bit_for_bit():
    values = [1 / 3, 2 / 3 - 1e-17]
    data = {"name": "f", "graph": "directed", "nodes": {"a": {"states": ["x", "y"]}},
            "params": {"a": {"table": [1 / 3, 1 - 1 / 3]}}}
    assert read_bif(write_bif(data))["params"]["a"]["table"] == [1 / 3, 1 - 1 / 3]
    assert all(float(scalar(v)) == v for v in values)


def _assert_pgmpy_model_matches(model, data):
    for node, block in data["params"].items():
        cpd = model.get_cpds(node)
        parents = data["nodes"][node].get("parents", [])
        assert list(cpd.variables) == [node, *parents]
        for var in cpd.variables:
            assert [str(s) for s in cpd.state_names[var]] == data["nodes"][var]["states"]
        values = cpd.get_values()  # (child states, parent configurations in C order)
        rows = block["table"] if parents else [block["table"]]
        for c, row in enumerate(rows):
            assert [float(values[s][c]) for s in range(len(row))] == row, node


@needs_data
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_pgmpy_agrees_on_the_files_and_reads_what_we_write(networks, name):
    bif = pytest.importorskip("pgmpy.readwrite.BIF")
    data = networks[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _assert_pgmpy_model_matches(bif.BIFReader(str(DATA / f"{name}.bif")).get_model(), data)
        _assert_pgmpy_model_matches(bif.BIFReader(string=write_bif(data)).get_model(), data)


def test_pgmpy_agrees_on_the_table_order():
    bif = pytest.importorskip("pgmpy.readwrite.BIF")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _assert_pgmpy_model_matches(bif.BIFReader(string=DOG).get_model(), read_bif(DOG))


def test_a_large_network_parses_quickly():
    """A munin-sized load: 300 nodes with 3 parents of 4 states each (19k rows)."""
    k = 4
    states = ", ".join(f"s{i}" for i in range(k))
    lines = ["network big {", "}"]
    lines += [f"variable v{i} {{\n  type discrete [ {k} ] {{ {states} }};\n}}" for i in range(300)]
    for i in range(300):
        if i < 3:
            lines.append(f"probability ( v{i} ) {{\n  table 0.1, 0.2, 0.3, 0.4;\n}}")
            continue
        pars = [f"v{j}" for j in (i - 1, i - 2, i - 3)]
        lines.append(f"probability ( v{i} | {', '.join(pars)} ) {{")
        for a in range(k):
            for b in range(k):
                for c in range(k):
                    lines.append(f"  (s{a}, s{b}, s{c}) 0.1, 0.2, 0.3, 0.4;")
        lines.append("}")
    text = "\n".join(lines) + "\n"
    start = time.perf_counter()
    data = read_bif(text)
    elapsed = time.perf_counter() - start
    assert len(data["nodes"]) == 300 and len(data["params"]["v299"]["table"]) == 64
    assert elapsed < 10, elapsed


# ------------------------------------------------------------------ YAML scalars


@pytest.mark.parametrize("value", [1e-05, 0.1, 1 / 3, 5e-324, 1e16, -0.0, 2.5e-300, 123456789.125, 1e300,
                                   float("inf"), -float("inf")])
def test_yaml_floats_read_back_bit_for_bit(value):
    text = dump_spec_yaml({"name": "f", "params": {"x": {"coef": [value], "intercept": value}}})
    for back in (read_yaml(text)[0], yaml.safe_load(text)):
        got = back["params"]["x"]["coef"][0]
        assert isinstance(got, float) and got == value and math.copysign(1, got) == math.copysign(1, value)
        assert back["params"]["x"]["intercept"] == value
    assert scalar(1e-05) == "1.0e-05" and scalar(5e-324) == "5.0e-324" and scalar(0.1) == "0.1"


def test_yaml_nan_reads_back():
    back, _ = read_yaml(dump_spec_yaml({"name": "n", "params": {"x": {"v": float("nan")}}}))
    assert math.isnan(back["params"]["x"]["v"])


STRINGS = ["yes", "no", "Yes", "NO", "on", "off", "y", "n", "true", "False", "1", "0", "-1", "0.5", "1e3", ".5",
           "null", "~", "", " lead", "trail ", "x[0]", "a: b", "a #b", "#x", "it's", "'q'", '"d"', "line\nbreak",
           "tab\there", "=", "<<", "-", "- x", "? x", "*star", "&anchor", "!tag", "%pct", "@at", "`bt",
           "12:30", "0x1F", "0o17", "1_000", ".inf", ".NaN", "{a}", "[a]", "a,b", "é", "\u2028",
           "plain", "Asy/Patchy", "<5", ">=7.5", "0_5_MG_L", "TRUE"]


@pytest.mark.parametrize("text", STRINGS)
def test_yaml_strings_read_back_as_the_same_string(text):
    data = {"name": text or "x", "description": text, "nodes": {text: {"states": [text, "other"]}}}
    dumped = dump_spec_yaml(data)
    assert read_yaml(dumped)[0] == data
    assert yaml.safe_load(dumped) == data


def test_yaml_quotes_only_when_needed():
    assert scalar("yes") == "'yes'" and scalar("no") == "'no'" and scalar("on") == "'on'"
    assert scalar("1") == "'1'" and scalar("0.5") == "'0.5'" and scalar("null") == "'null'"
    assert scalar("true") == "'true'" and scalar("1e3") == "'1e3'"
    assert scalar("LOW") == "LOW" and scalar("<5") == "<5" and scalar("young") == "young"


@pytest.mark.parametrize("path", sorted((REPO / "models").glob("*.yaml")), ids=lambda p: p.name)
def test_every_model_file_survives_a_dump(path):
    data, _ = read_yaml(path.read_text(), str(path))
    text = dump_spec_yaml(data)
    assert read_yaml(text)[0] == data
    assert yaml.safe_load(text) == data


@pytest.mark.parametrize("text", ["line one\nline two\n", "a\n\nb", "tail\nnewlines\n\n", "# not\na: comment\n"])
def test_multi_line_descriptions_read_back(text):
    data = {"name": "m", "description": text, "nodes": {"a": {"states": 2}}}
    dumped = dump_spec_yaml(data)
    assert "description: |" in dumped
    assert read_yaml(dumped)[0] == data and yaml.safe_load(dumped) == data


def test_numpy_values_are_written_as_plain_numbers():
    import numpy as np  # a runtime dependency: always there (the writer itself needs no numpy)

    data = {"name": "np", "params": {"a": {"table": np.array([[0.25, 0.75], [1 / 3, 2 / 3]]),
                                           "n": np.int64(3), "v": np.float64(0.1), "ok": np.bool_(True)}}}
    back, _ = read_yaml(dump_spec_yaml(data))
    assert back == {"name": "np", "params": {"a": {"table": [[0.25, 0.75], [1 / 3, 2 / 3]], "n": 3, "v": 0.1,
                                                   "ok": True}}}
