"""Bad or impossible requests: each answer is one plain line, with the line of the mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudshift.assess import assess, load_catalog, workload_from_text
from cloudshift.assess.regions import priced_regions
from cloudshift.assess.results import Assessment
from cloudshift.catalog.load import Catalog
from cloudshift.catalog.tables import resolve_overrides
from cloudshift.core.errors import ConfigError, UsageError

BASE = """\
name: t
compute:
  - name: app
    count: 2
    vcpus: "2+"
    memory_gib: "4+"
requirements:
  regions: [us-east-1, us-central1]
"""


@pytest.fixture(scope="module")
def cat(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    # Not the prices `prices update` may have fetched on this machine: the packaged ones.
    return load_catalog(user_dir=tmp_path_factory.mktemp("no-updates"))


def run(cat: Catalog, text: str, tmp_path: Path, *, weights: str | None = None,
        regions: list[str] | None = None, providers: str | None = None) -> Assessment:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    return assess(path, catalog=cat, weights=weights, regions=regions, providers=providers)


def test_a_need_no_instance_type_meets(cat: Catalog, tmp_path: Path) -> None:
    r = run(cat, BASE.replace('vcpus: "2+"', 'vcpus: "1000+"'), tmp_path)
    assert r.ranked == []
    problems = [p for o in r.options for p in o.problems]
    assert any("no instance type in aws us-east-1 has 1000+ vCPU, 4+ GiB" in p and
               "the largest is" in p for p in problems), problems


def test_exact_sizes_and_gpu_not_offered(cat: Catalog, tmp_path: Path) -> None:
    # Exactly 2 vCPU and 4 GiB: c5.large and c6i.large list at $0.085, the newer one wins.
    r = run(cat, BASE.replace('"2+"', "2").replace('"4+"', "4"), tmp_path)
    aws = next(o for o in r.options if o.provider == "aws")
    assert aws.matches[0].chosen is not None
    assert aws.matches[0].chosen.name == "c6i.large"
    assert [x.name for x in aws.matches[0].runners_up] == ["c5.large", "c7i.large"]
    assert all(x.vcpus == 2 and x.memory_gib == 4 for x in aws.matches[0].runners_up)
    gpu = BASE.replace(
        '    memory_gib: "4+"', '    memory_gib: "4+"\n    gpu: {model: T4, count: 1}')
    r = run(cat, gpu, tmp_path)
    probs = {o.key: o.problems for o in r.options}
    assert "GPU T4 is not offered by aws in us-east-1" in probs["aws:us-east-1"][0]
    assert "n1 machines, whose base price is not in the data" in probs["gcp:us-central1"][0]


def test_zero_weights(cat: Catalog, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="all weights are zero"):
        run(cat, BASE, tmp_path, weights="cost=0,reliability=0")
    r = run(cat, BASE, tmp_path, weights="cost=0,reliability=2")
    assert r.weights["reliability"] == 1 and r.weights["cost"] == 0
    with pytest.raises(UsageError, match=r"unknown criterion 'costs'.*did you mean cost"):
        run(cat, BASE, tmp_path, weights="costs=1")
    with pytest.raises(UsageError, match="must not be negative"):
        run(cat, BASE, tmp_path, weights="cost=-1")


def test_region_that_does_not_exist_lists_close_names(cat: Catalog, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        run(cat, BASE.replace("us-east-1,", "us-east-7,"), tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'w.yaml'}:8: there is no region named "
                                      "'us-east-7'")
    assert "did you mean" in str(err.value) and "us-east-1," in str(err.value)
    with pytest.raises(ConfigError, match=r"'europe-west9'.*did you mean europe-west"):
        run(cat, BASE, tmp_path, regions=["europe-west9"])
    with pytest.raises(UsageError, match=r"unknown provider 'gpc'.*did you mean gcp"):
        run(cat, BASE, tmp_path, providers="aws,gpc")
    with pytest.raises(UsageError, match="us-central1 is a gcp region, which --providers"):
        run(cat, BASE, tmp_path, providers="aws", regions=["us-central1"])
    # Regions of the file that --providers leaves out are simply not priced.
    r = run(cat, BASE, tmp_path, providers="aws")
    assert [o.key for o in r.options] == ["aws:us-east-1"]
    with pytest.raises(ConfigError, match=r"w.yaml:11: there is no region named 'aws:us-east-9'"):
        run(cat, BASE + "current:\n  provider: aws\n  region: us-east-9\n", tmp_path)


def test_region_known_but_unpriced_is_said_not_guessed(cat: Catalog, tmp_path: Path) -> None:
    r = run(cat, BASE, tmp_path, regions=["westeurope,us-east-1"])
    assert [o.key for o in r.options] == ["aws:us-east-1"]
    ex = r.excluded[0]
    assert (ex.provider, ex.region) == ("azure", "westeurope")
    assert ex.reason.startswith("no price data for this region (instance prices cover eastus")


@pytest.mark.parametrize(("text", "expected"), [
    (BASE.replace("    count: 2\n", "    count: 2\n    colour: red\n"),
     "w.yaml:5: compute[0].colour: unknown field"),
    (BASE.replace('vcpus: "2+"', "vcpus: two"),
     "w.yaml:5: compute[0].vcpus: 'two' is not a size"),
    (BASE.replace("    count: 2\n", "    count: 2\n    pricing: reserved\n"),
     "w.yaml:5: compute[0].pricing: Input should be 'on_demand'"),
    (BASE.replace("requirements:", "  - name: app\n    vcpus: 1\n    memory_gib: 1\n"
                  "requirements:"),
     "w.yaml:3: compute: the name 'app' is used twice"),
    (BASE + "requirements:\n  min_sla: 99\n", "'requirements' appears twice"),
    (BASE + "  compliance: [HIPPA]\n", "w.yaml:9: unknown compliance regime 'HIPPA'"),
    (BASE + "  residency: [Europa]\n", "residency 'Europa' is not an area"),
    ("compute: [\n", "w.yaml:2: not valid YAML"),
    ("- just a list\n", "the workload must be a YAML mapping"),
])
def test_workload_mistakes_name_their_line(cat: Catalog, tmp_path: Path, text: str,
                                           expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        run(cat, text, tmp_path)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_a_user_file_overrides_packaged_prices(cat: Catalog, tmp_path: Path) -> None:
    from importlib import resources

    packaged = (resources.files("cloudshift.catalog") / "data" / "storage.csv").read_text()
    (tmp_path / "storage.csv").write_text(packaged.replace(
        "aws,us-east-1,STANDARD,S3 Standard,0.023", "aws,us-east-1,STANDARD,S3 Standard,0.5"))
    wl = workload_from_text(BASE + "storage:\n  hot: {gb: 100}\n", "w.yaml")
    mine = load_catalog(resolve_overrides([str(tmp_path)]), user_dir=tmp_path / "none")
    r = assess(wl, catalog=mine)
    aws = next(o for o in r.options if o.key == "aws:us-east-1")
    hot = next(line for line in aws.lines if line.item == "hot storage")
    assert hot.monthly_usd == pytest.approx(100 * 0.5)
    assert r.data["storage.csv"] == str(tmp_path / "storage.csv")
    assert r.data["vms.csv"] == "packaged"

    (tmp_path / "bad" / "network.csv").parent.mkdir()
    (tmp_path / "bad" / "network.csv").write_text("provider,region\naws,us-east-1\n")
    with pytest.raises(ConfigError, match="missing column"):
        load_catalog(resolve_overrides([str(tmp_path / "bad" / "network.csv")]))
    (tmp_path / "prices.csv").write_text("x\n")
    with pytest.raises(UsageError, match="not a data file name"):
        resolve_overrides([str(tmp_path / "prices.csv")])


def test_data_ships_as_package_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """The loader reads through importlib.resources, not paths relative to the checkout."""
    from importlib import resources

    from cloudshift.catalog.tables import TABLES

    data = resources.files("cloudshift.catalog") / "data"
    for name in [*TABLES, "sources.csv", "PROVENANCE.md"]:
        assert (data / name).is_file(), name
    assert (resources.files("cloudshift.render") / "templates" / "assess_report.html.j2"
            ).is_file()
    monkeypatch.chdir(tmp_path)
    fresh = load_catalog(user_dir=tmp_path)
    assert len(fresh.instances["azure:eastus"]) == 292
    assert priced_regions(fresh, "azure") == ["eastus", "westus2"]


def test_replaced_tables_are_cited_and_checked(tmp_path: Path) -> None:
    from importlib import resources

    packaged = (resources.files("cloudshift.catalog") / "data" / "storage.csv").read_text()
    mine = tmp_path / "storage.csv"
    mine.write_text(packaged)
    cat = load_catalog(resolve_overrides([str(mine)]), user_dir=tmp_path / "none")
    rates = cat.storage[("aws:us-east-1", "STANDARD")]
    assert rates.gb_month.source.title == f"override from {mine}"
    # A blank rate is the reference region's; without that row there is nothing to take.
    rows = [line for line in packaged.splitlines()
            if not line.startswith("aws,us-east-1,DEEP_ARCHIVE")]
    mine.write_text("\n".join(rows) + "\n")
    with pytest.raises(ConfigError, match="'retrieval_gb' is blank and there is no "
                                          "aws:us-east-1 DEEP_ARCHIVE row") as err:
        load_catalog(resolve_overrides([str(mine)]), user_dir=tmp_path / "none")
    assert "\n" not in str(err.value)
    # A blank internet egress price is the first tier of egress_tiers.csv; where no tier
    # covers the region, the blank is an error rather than a guess.
    net = tmp_path / "network.csv"
    net.write_text("provider,region,internet_egress_per_gb,inter_region_per_gb,"
                   "free_internet_gb\naws,us-east-1,,0.02,100\naws,ap-south-1,,0.08,100\n")
    with pytest.raises(ConfigError, match=r"network\.csv ap-south-1: internet_egress_per_gb "
                                          r"is blank and no tier"):
        load_catalog(resolve_overrides([str(net)]), user_dir=tmp_path / "none")
    net.write_text("provider,region,internet_egress_per_gb,inter_region_per_gb,"
                   "free_internet_gb\naws,us-east-1,,0.02,100\n")
    cat = load_catalog(resolve_overrides([str(net)]), user_dir=tmp_path / "none")
    internet = cat.network["aws:us-east-1"].internet_egress_gb
    assert internet.value == 0.09 and internet.source.id == "aws-ec2-dto"
