"""Three workloads priced by hand from the packaged data, and the assessment held to them.

Every expected figure below is written out as the arithmetic a person does with the rows of
src/cloudshift/catalog/data/*.csv, so a change in the engine (or the data) shows up here."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cloudshift.assess import assess, load_catalog
from cloudshift.assess.results import Assessment, PlatformOption
from cloudshift.assess.tiers import TIERS, tier_prices
from cloudshift.catalog.load import Catalog
from cloudshift.catalog.records import family_of

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def cat(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    # Not the prices `prices update` may have fetched on this machine: the packaged ones.
    return load_catalog(user_dir=tmp_path_factory.mktemp("no-updates"))


def option(result: Assessment, key: str) -> PlatformOption:
    return next(o for o in result.options if o.key == key)


def lines(o: PlatformOption) -> dict[str, float]:
    return {line.item: line.monthly_usd for line in o.lines}


# --- a small web shop (examples/webshop.yaml) ------------------------------------------------

def test_webshop_costs_mapping_and_ranking(cat: Catalog) -> None:
    r = assess(EXAMPLES / "webshop.yaml", catalog=cat)
    assert [o.key for o in r.ranked] == ["azure:eastus", "gcp:us-central1", "aws:us-east-1"]

    aws = option(r, "aws:us-east-1")
    web, worker = aws.matches
    # m5.large and m6i.large both list at $0.096: on a tie the newer family wins.
    assert web.chosen is not None and web.chosen.name == "m6i.large"
    assert [x.name for x in web.runners_up] == ["m5.large", "m7i.large"]
    assert worker.chosen is not None and worker.chosen.name == "m5.xlarge"  # spot $0.0601
    expected = {
        "web": 2 * 0.096 * 730,
        "worker": 0.0601 * 730,
        "hot storage": 500 * 0.023,
        "hot requests": 1_000_000 / 1000 * 0.005 + 20_000_000 / 1000 * 0.0004,
        "cool storage": 2000 * 0.0125,
        "archive storage": 5000 * 0.00099,
        "internet egress": (1000 - 100) * 0.09,
        "orders": (2 * 0.053 + 8 * 0.009) * 2 * 730 + 100 * 0.115 * 2,
    }
    assert lines(aws) == pytest.approx(expected)
    assert aws.monthly_usd == pytest.approx(602.363)

    gcp = option(r, "gcp:us-central1")
    assert [m.chosen.name for m in gcp.matches if m.chosen] == ["e2-standard-2", "c3-standard-4"]
    assert gcp.monthly_usd == pytest.approx(
        2 * 0.06701 * 730 + 0.03151 * 730 + 500 * 0.020 + 13 + 2000 * 0.010 + 5000 * 0.0012
        + 1000 * 0.12 + (2 * 0.0413 + 8 * 0.007) * 2 * 730 + 100 * 0.17 * 2)
    azure = option(r, "azure:eastus")
    assert [m.chosen.name for m in azure.matches if m.chosen] == ["Standard_D2as_v5",
                                                                  "Standard_D4as_v5"]
    assert azure.monthly_usd == pytest.approx(
        2 * 0.086 * 730 + 0.01892 * 730 + 500 * 0.0184 + 13 + 2000 * 0.01 + 5000 * 0.00099
        + 900 * 0.087 + 282.88)

    # Scores: cost relative to the cheapest, reliability 25 points per nine of the
    # composite SLA (web 2 instances across zones, worker 1 instance, hot storage, HA db).
    assert gcp.scores["cost"].score == pytest.approx(100)
    assert azure.scores["cost"].score == pytest.approx(100 * gcp.monthly_usd / azure.monthly_usd)
    aws_sla = 0.9999 * 0.995 * 0.999 * 0.9995
    assert aws.sla_percent == pytest.approx(100 * aws_sla)
    assert aws.scores["reliability"].score == pytest.approx(-25 * math.log10(1 - aws_sla))
    # Performance: family launch years weighted by group cost, 10 points per year behind.
    aws_year = (2021 * expected["web"] + 2017 * expected["worker"]) / (
        expected["web"] + expected["worker"])
    assert aws.scores["performance"].score == pytest.approx(100 - 10 * (2022 - aws_year))
    assert "Ice Lake" in aws.scores["performance"].evidence
    assert aws.scores["security"].score == 100  # PCI DSS held
    assert aws.total == pytest.approx(sum(r.weights[c] * aws.scores[c].score
                                          for c in aws.scores))

    # Against today (AWS us-east-1, priced with the same data): saving, move cost, payback.
    assert r.current is not None and r.current.monthly_usd == pytest.approx(602.363)
    assert gcp.move is not None
    move = (500 + 2000 + 5000 + 100) * 0.09 + 2000 * 0.01 + 5000 * 0.02
    assert gcp.move.move_cost_usd == pytest.approx(move)
    assert gcp.move.monthly_saving_usd == pytest.approx(602.363 - gcp.monthly_usd)
    assert gcp.move.payback_months == pytest.approx(move / (602.363 - gcp.monthly_usd))
    assert aws.move is not None and aws.move.payback_note == "current platform"


def test_weights_change_the_ranking(cat: Catalog) -> None:
    r = assess(EXAMPLES / "webshop.yaml", catalog=cat, weights="cost=1")
    assert r.ranked[0].key == "gcp:us-central1"
    assert r.weights == {"cost": 1, "performance": 0, "reliability": 0, "security": 0,
                         "availability": 0}
    assert all(o.total == pytest.approx(o.scores["cost"].score) for o in r.ranked)


# --- a GPU training cluster (examples/gpu-training.yaml) -------------------------------------

def test_gpu_cluster(cat: Catalog) -> None:
    r = assess(EXAMPLES / "gpu-training.yaml", catalog=cat)
    aws, gcp = option(r, "aws:us-east-1"), option(r, "gcp:us-central1")
    assert aws.matches[0].chosen is not None and aws.matches[0].chosen.name == "p4d.24xlarge"
    assert lines(aws)["trainers"] == pytest.approx(4 * 21.957642 * 300)
    assert lines(aws)["notebook"] == pytest.approx(0.8048 * 730)  # g6.xlarge, 1x L4
    # a2-megagpu-16g carries 16 A100s and "count: 8" means exactly eight.
    assert gcp.matches[0].chosen is not None and gcp.matches[0].chosen.name == "a2-highgpu-8g"
    assert lines(gcp)["trainers"] == pytest.approx(4 * 29.38708 * 300)
    assert gcp.matches[1].chosen is not None and gcp.matches[1].chosen.name == "g2-standard-4"
    assert aws.monthly_usd == pytest.approx(4 * 21.957642 * 300 + 0.8048 * 730
                                            + 20000 * 0.023 + 5000 * 0.0004)
    assert [o.key for o in r.ranked] == ["aws:us-east-1", "gcp:us-central1"]

    # Azure prices A100 nodes but offers no L4 in eastus: said plainly, not ranked.
    azure = option(r, "azure:eastus")
    assert azure.rank is None
    assert azure.matches[0].chosen is not None
    assert azure.matches[0].chosen.name == "Standard_ND96asr_v4"
    assert "GPU L4 is not offered by azure in eastus" in azure.problems[0]
    assert any(u.startswith("azure: none of its priced regions (eastus)") for u in r.unmet)


# --- an EU-only regulated workload (examples/eu-regulated.yaml) ------------------------------

def test_eu_only_workload_excludes_azure_by_residency(cat: Catalog) -> None:
    r = assess(EXAMPLES / "eu-regulated.yaml", catalog=cat)
    assert sorted(o.key for o in r.ranked) == ["aws:eu-central-1", "aws:eu-west-1",
                                               "gcp:europe-west1", "gcp:europe-west4"]
    # London is in Europe but not in the EU; Azure's priced regions are all in the US.
    reasons = {(e.provider, e.region): e.reason for e in r.excluded}
    assert reasons[("aws", "eu-west-2")].startswith("outside the residency area EU")
    assert reasons[("azure", "eastus")].startswith("outside the residency area EU")
    assert reasons[("azure", "westeurope")].startswith("no price data")
    assert any(u.startswith("azure: no region can be priced") and "outside EU" in u
               for u in r.unmet)

    gcp = option(r, "gcp:europe-west1")
    factor = 0.10683 / 0.09712  # n2-standard-2 europe-west1 vs us-central1 scales Cloud SQL
    assert lines(gcp) == pytest.approx({
        "api": 3 * 0.14743 * (1 - 0.37) * 730,  # e2-standard-4, 1-year commitment
        "hot storage": 1000 * 0.020,
        "hot requests": 2000 * 0.005 + 10000 * 0.0004,
        "archive storage": 20000 * 0.0012,
        "internet egress": 500 * 0.12,
        "records": (4 * 0.0413 + 32 * 0.007) * factor * 2 * 730 + 500 * 0.17 * 2,
    })
    aws = option(r, "aws:eu-west-1")
    assert aws.monthly_usd == pytest.approx(
        3 * 0.214 * 0.72 * 730 + 23 + 14 + 19.8 + 400 * 0.09
        + 0.5 * (0.107 / 0.096) * 2 * 730 + 115)
    assert r.ranked[0].key == "gcp:europe-west1"
    # On-premises today at a stated $4,000: uploading costs nothing at the clouds' side.
    assert gcp.move is not None and gcp.move.move_cost_usd == 0
    assert gcp.move.monthly_saving_usd == pytest.approx(4000 - gcp.monthly_usd)
    assert set(gcp.certifications) >= {"GDPR", "ISO 27001", "HIPAA"}


def test_a_regime_no_region_holds(cat: Catalog, tmp_path: Path) -> None:
    text = (EXAMPLES / "eu-regulated.yaml").read_text().replace(
        "compliance: [GDPR, ISO 27001, HIPAA]", "compliance: [GDPR, fedramp]")
    path = tmp_path / "w.yaml"
    path.write_text(text)
    r = assess(path, catalog=cat)
    assert r.ranked == []
    for o in r.options:
        assert any(p.startswith(f"FedRAMP: {o.provider} holds it only for country:US regions")
                   for p in o.problems), o.problems


def test_every_priced_region_and_family_is_described(cat: Catalog) -> None:
    for key, types in cat.instances.items():
        assert key in cat.regions, key
        assert key in cat.network, key
        for tier in TIERS:
            assert tier_prices(cat, key, tier) is not None, (key, tier)
        for t in types:
            assert (t.provider, family_of(t.provider, t.name)) in cat.families, t.name


def test_reading_archived_data_pays_its_restore(cat: Catalog, tmp_path: Path) -> None:
    # Each read of S3 Glacier Deep Archive or Blob Archive data is a restore first: the
    # restore request (S3 0.10 per 1,000; Azure's archive read operation 0.50 per 1,000) and
    # the restore fee per GB (0.02) come on top of the GET (0.0004 per 1,000). GCS Archive is
    # read directly at its own rates (0.05 per 1,000 and per GB).
    path = tmp_path / "w.yaml"
    path.write_text("name: cold\nstorage:\n  archive: {gb: 1000, reads_per_month: 10000, "
                    "retrieved_gb_per_month: 50}\n"
                    "requirements:\n  regions: [us-east-1, us-central1, eastus]\n")
    r = assess(path, catalog=cat)
    expected = {"aws:us-east-1": 10 * (0.0004 + 0.1) + 50 * 0.02,
                "azure:eastus": 10 * (0.0004 + 0.5) + 50 * 0.02,
                "gcp:us-central1": 10 * 0.05 + 50 * 0.05}
    for key, usd in expected.items():
        assert lines(option(r, key))["archive requests"] == pytest.approx(usd), key
    assert "x $0.1004/1k" in next(line.detail for line in option(r, "aws:us-east-1").lines
                                  if line.item == "archive requests")
