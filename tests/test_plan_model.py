"""The planner's model on described workloads, with every expected number computed by hand.

Units: 1 GB = 2**30 bytes. Shipped prices used below (see catalog/data/PROVENANCE.md):
S3 STANDARD GET 0.0004/1k, LIST/PUT 0.005/1k; GCS STANDARD writes 0.005/1k, 0.020/GB-month;
S3 STANDARD 0.023/GB-month; AWS internet egress from us-east-1 0.09/0.085/0.07/0.05 per GB at
0/10/50/150 TB; m5.8xlarge in us-east-1 1.536 USD/h; measured aws:us-east-1 -> gcp:us-central1
4.652 Gbit/s; GCS ~1000 writes/s; 32 connections x 1/0.1 s per worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cloudshift.catalog.load import load_catalog
from cloudshift.core.errors import ConfigError, UsageError
from cloudshift.cost.model import TransferWorkload
from cloudshift.cost.planner import Plan, plan_workload
from cloudshift.cost.prices import PriceBook

GiB = 2**30
TiB = 2**40


@pytest.fixture(scope="module", autouse=True)
def packaged_prices_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Price with the packaged catalogue, not with what `prices update` fetched here."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLOUDSHIFT_HOME", str(tmp_path_factory.mktemp("home")))
        yield


def option(p: Plan, name: str) -> object:
    return next(o for o in p.options if o.name == name)


@pytest.fixture(scope="module")
def ten_tib() -> Plan:
    wl = TransferWorkload.of([(GiB, "STANDARD", 10240)], dst_provider="gcp")
    return plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1")


def test_10tib_s3_to_gcs_default_tiers(ten_tib: Plan) -> None:
    o = next(o for o in ten_tib.options if o.name == "direct, 8 x m5.8xlarge")
    # C_d: 10,240 GB all in the first AWS tier (up to 10,240 GB) at 0.09.
    assert o.c_d.usd == pytest.approx(921.60)
    assert o.c_d.lines[0].price is not None and o.c_d.lines[0].price.value == 0.09
    assert "Amazon EC2" in o.c_d.lines[0].price.source
    # C_s: 1 GiB objects at 16 MiB parts = 64 parts + 1 final call on GCS = 65 writes each.
    #   PUT 10,240 x 65 = 665,600 x 0.005/1k = 3.328; GET 10,240 x 0.0004/1k = 0.004096;
    #   LIST src ceil(10,240/1000) = 11 x 0.005/1k = 0.000055; LIST dst 1 x 0.005/1k.
    assert ten_tib.workload.write_requests == 665_600
    assert o.c_s.usd == pytest.approx(3.328 + 0.004096 + 0.000055 + 0.000005)
    # T: 10 TiB x 8 bits / (8 x 4.652 Gbit/s) = 87,960,930,222,080 / 37.216e9 = 2,363.5 s;
    # requests: 665,600 / min(8 x 320, 1000) = 665.6 s, so the network bounds it.
    assert o.timing.seconds == pytest.approx(10 * TiB * 8 / (8 * 4.652e9))
    assert o.timing.seconds == pytest.approx(2363.52, abs=0.01)
    assert "network" in o.timing.bottleneck
    # C_v: 8 VMs x 2,363.52 s / 3600 x 1.536 USD/h = 8.0671
    assert o.c_v.usd == pytest.approx(8 * 2363.5246 / 3600 * 1.536, rel=1e-5)
    assert o.total_usd == pytest.approx(921.60 + 3.332156 + 8.06716, abs=1e-3)


def test_10tib_compares_workers_and_marks_pareto(ten_tib: Plan) -> None:
    names = [o.name for o in ten_tib.options]
    assert [f"direct, {n} x m5.8xlarge" for n in (1, 2, 4, 8, 16, 32)] == names[:6]
    assert names[-1].startswith("this machine")
    # 32 workers hit the GCS write limit: 665,600 writes / 1000 per s = 665.6 s.
    o32 = next(o for o in ten_tib.options if o.name == "direct, 32 x m5.8xlarge")
    assert o32.timing.seconds == pytest.approx(665.6)
    assert "gcp write rate limit" in o32.timing.bottleneck
    # From this machine at the assumed 1 Gbit/s: 87,960,930,222,080 bits / 1e9 = 24.43 h,
    # no VMs, same egress and fees: the cheapest, so the best without a deadline.
    local = ten_tib.options[-1]
    assert local.time_s == pytest.approx(87_960.93, abs=0.01)
    assert local.c_v.usd == 0
    assert ten_tib.best is local and local.pareto
    assert o32.pareto
    assert any("1 Gbit/s assumed" in o.name for o in ten_tib.options)


def test_10tib_deadline_and_budget_pick_from_the_pareto_front() -> None:
    wl = TransferWorkload.of([(GiB, "STANDARD", 10240)], dst_provider="gcp")
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      deadline="1h")
    # Meets 1 h: 8 x (0.66 h), 16 x, 32 x. 8 and 16 cost the same VM-hours (8.07 USD), so
    # the faster wins the tie; 32 pays for bandwidth idle at the write limit
    # (32 x 665.6 s x 1.536/3600 = 9.09 USD).
    assert p.best.name == "direct, 16 x m5.8xlarge"
    assert p.best.meets and option(p, "direct, 8 x m5.8xlarge").meets  # type: ignore[attr-defined]
    assert not option(p, "direct, 4 x m5.8xlarge").meets  # type: ignore[attr-defined]
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      budget=930)
    # Only this machine (924.93 USD) fits 930 USD.
    assert p.best.name.startswith("this machine")
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      budget=1000)
    assert p.best.name == "direct, 32 x m5.8xlarge"  # fastest within 1000 USD
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      deadline="5m")
    assert not p.best.meets and any("no option meets the deadline" in w for w in p.warnings)


def test_running_cost_and_payback(ten_tib: Plan) -> None:
    r = ten_tib.running
    assert r.src_usd_month == pytest.approx(10240 * 0.023)   # 235.52
    assert r.dst_usd_month == pytest.approx(10240 * 0.020)   # 204.80
    assert r.payback_months == pytest.approx(ten_tib.best.total_usd / 30.72)


def test_volume_tiers_across_boundaries() -> None:
    # 60 TiB = 61,440 GB: 10,240 x 0.09 + 40,960 x 0.085 + 10,240 x 0.07 = 5,120.00
    wl = TransferWorkload.of([(GiB, "STANDARD", 61440)], dst_provider="azure")
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="azure:eastus", workers=4)
    o = p.options[0]
    assert [round(line.quantity) for line in o.c_d.lines] == [10240, 40960, 10240]
    assert o.c_d.usd == pytest.approx(5120.0)
    # Azure -> GCP from eastus: 0.087 first 10 TB.
    wl = TransferWorkload.of([(GiB, "HOT", 100)], dst_provider="gcp")
    p = plan_workload(wl, src_region="azure:eastus", dst_region="gcp:us-central1", workers=1)
    assert p.options[0].c_d.usd == pytest.approx(8.7)


def test_50_million_small_objects_request_fees_dominate() -> None:
    wl = TransferWorkload.of([(4096, "STANDARD", 50_000_000)], dst_provider="gcp")
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1")
    o = next(o for o in p.options if o.name == "direct, 8 x m5.8xlarge")
    # C_s: PUT 50e6 x 0.005/1k = 250; GET 50e6 x 0.0004/1k = 20; LIST 50,000 pages x 0.005/1k
    # = 0.25; LIST dst 1 page = 0.000005  -> 270.250005 USD
    assert o.c_s.usd == pytest.approx(270.250005)
    # C_d: 50e6 x 4096 B = 190.7349 GB x 0.09 = 17.1661 USD
    assert o.c_d.usd == pytest.approx(50e6 * 4096 / GiB * 0.09)
    assert o.c_s.usd > 15 * o.c_d.usd
    # T: GCS takes ~1000 writes/s: 50e6 / 1000 = 50,000 s whatever the worker count >= 4.
    assert o.timing.seconds == pytest.approx(50_000)
    assert "gcp write rate limit" in o.timing.bottleneck
    one = next(o for o in p.options if o.name == "direct, 1 x m5.8xlarge")
    # One worker: 32 connections / 0.1 s = 320 objects/s -> 156,250 s
    assert one.timing.seconds == pytest.approx(156_250)
    assert one.c_v.usd == pytest.approx(156_250 / 3600 * 1.536)  # 66.67 USD
    assert o.c_v.usd == pytest.approx(8 * 50_000 / 3600 * 1.536)  # 170.67 USD
    # With a 15 h deadline the cheapest that makes it is 4 workers (exactly at the limit).
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      deadline="15h", workers=None, link_gbps=10)
    assert p.best.name == "direct, 4 x m5.8xlarge"
    assert p.best.timing.seconds == pytest.approx(50_000)


def test_cold_storage_source_needs_restore_first() -> None:
    wl = TransferWorkload.of([(GiB, "DEEP_ARCHIVE", 1024), (GiB, "STANDARD_IA", 512)],
                     dst_provider="gcp")
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      workers=4)
    o = p.options[0]
    (r,) = p.restores
    # Deep Archive standard restore: 1024 x 0.10/1k = 0.1024 + 1024 GB x 0.02 = 20.48
    assert r.storage_class == "DEEP_ARCHIVE" and r.hours == 12
    assert r.usd == pytest.approx(20.5824)
    lines = {line.what: line.usd for line in o.c_s.lines}
    # Standard-IA: retrieval 512 GB x 0.01 = 5.12; GET 512 x 0.001/1k = 0.000512
    assert lines["retrieval STANDARD_IA"] == pytest.approx(5.12)
    assert lines["GET STANDARD_IA objects"] == pytest.approx(0.000512)
    # T adds the 12 h restore wait; the VMs are not billed for it.
    assert o.timing.restore_seconds == 12 * 3600
    assert o.time_s == pytest.approx(o.timing.seconds + 43_200)
    assert o.c_v.usd == pytest.approx(4 * o.timing.seconds / 3600 * 1.536)
    assert any("must be restored" in w for w in p.warnings)
    # Storage afterwards: 1024 GB x 0.00099 + 512 GB x 0.0125 = 7.41376 at the source,
    # 1536 x 0.02 = 30.72 in GCS Standard: moving costs more per month, no payback.
    assert p.running.src_usd_month == pytest.approx(7.41376)
    assert p.running.payback_months is None


def test_relay_through_a_faster_third_region() -> None:
    # Measured: aws:ap-northeast-2 -> gcp:us-central1 0.158 Gbit/s; via gcp:asia-northeast3
    # the slower leg still carries several Gbit/s, so the overlay is listed and is faster.
    wl = TransferWorkload.of([(GiB, "STANDARD", 1024)], dst_provider="gcp")
    p = plan_workload(wl, src_region="aws:ap-northeast-2", dst_region="gcp:us-central1",
                      workers=2)
    direct = p.options[0]
    relays = [o for o in p.options if o.name.startswith("relay via")]
    assert relays, [o.name for o in p.options]
    via = next(o for o in relays if "gcp:asia-northeast3" in o.name)
    assert via.time_s < direct.time_s / 10
    # Egress is paid on both legs; VMs run in both the source and the relay region.
    assert len(via.c_d.lines) == 2 and len(via.c_v.lines) == 2
    egress = load_catalog().egress
    leg1 = egress[("aws:ap-northeast-2", "gcp:asia-northeast3")].value
    leg2 = egress[("gcp:asia-northeast3", "gcp:us-central1")].value
    assert via.c_d.usd == pytest.approx(1024 * (leg1 + leg2))
    assert "no volume tiers shipped" in (via.c_d.lines[0].price.note or "")  # type: ignore[union-attr]


def test_unmeasured_pair_falls_back_to_a_flagged_default() -> None:
    cat = load_catalog()
    pair = ("aws:us-east-1", "aws:us-west-2")
    book = PriceBook(replace(cat, throughput={k: v for k, v in cat.throughput.items()
                                              if k != pair}))
    src, dst = book.region(pair[0]), book.region(pair[1])
    wl = TransferWorkload.of([(GiB, "STANDARD", 10)], dst_provider="aws")
    p = plan_workload(wl, src_region=src, dst_region=dst, workers=1, book=book)
    assert any("no throughput measurement for aws:us-east-1 -> aws:us-west-2" in w
               for w in p.warnings)
    price = next(x for x in p.prices if x.key == "throughput/aws:us-east-1/aws:us-west-2")
    assert price.note.startswith("DEFAULT")


def test_bad_input_is_one_clear_line() -> None:
    wl = TransferWorkload.of([(GiB, "STANDARD", 1)])
    with pytest.raises(UsageError, match="did you mean gcp:us-central1"):
        plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-centrl1")
    with pytest.raises(UsageError, match="unknown provider"):
        plan_workload(wl, src_region="ibm:us-south", dst_region="gcp:us-central1")
    with pytest.raises(UsageError, match="deadline must be positive"):
        plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      deadline="0h")
    with pytest.raises(UsageError, match="budget must be positive"):
        plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      budget=-5)
    with pytest.raises(UsageError, match=r"unknown aws worker type 'm5\.8xlrge'"):
        plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      worker_type="m5.8xlrge")


def test_prices_file_overrides_any_price(tmp_path: Path) -> None:
    f = tmp_path / "contract.toml"
    f.write_text('[prices]\n"egress/aws:us-east-1/gcp:us-central1" = 0.05\n'
                 '"storage/gcp:*/STANDARD/write_1k" = 0.004\n'
                 '"vm/aws:us-east-1/m5.8xlarge" = 1.0\n')
    wl = TransferWorkload.of([(GiB, "STANDARD", 10240)], dst_provider="gcp")
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      workers=8, prices=f)
    o = p.options[0]
    assert o.c_d.usd == pytest.approx(10240 * 0.05)          # flat contract rate
    put = next(line for line in o.c_s.lines if line.what.startswith("PUT"))
    assert put.usd == pytest.approx(665_600 * 0.004 / 1000)
    assert put.price is not None and put.price.source == f"override from {f}"
    assert o.c_v.usd == pytest.approx(8 * o.timing.seconds / 3600 * 1.0)
    js = tmp_path / "p.json"
    js.write_text(json.dumps({"egress/aws:*/*": 0.02}))
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      workers=8, prices=js)
    assert p.options[0].c_d.usd == pytest.approx(10240 * 0.02)
    with pytest.raises(ConfigError, match="cannot read prices file"):
        PriceBook.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.csv"
    bad.write_text("key,value\negres/aws:us-east-1/x,1\n")
    with pytest.raises(ConfigError, match="unknown key 'egres/aws:us-east-1/x'"):
        PriceBook.load(bad)
    bad.write_text("storage/aws:*/STANDARD/write_1k,cheap\n")
    with pytest.raises(ConfigError, match="is not a number"):
        PriceBook.load(bad)


def test_every_price_used_names_its_source_and_date(ten_tib: Plan) -> None:
    assert ten_tib.prices
    for price in ten_tib.prices:
        assert price.source and price.as_of and price.as_of != "?", price
    doc = ten_tib.to_dict()
    assert json.loads(json.dumps(doc))["best"] == ten_tib.best.name


def test_shipped_data_found_through_importlib_resources() -> None:
    from importlib import resources

    folder = resources.files("cloudshift.catalog").joinpath("data")
    names = {p.name for p in folder.iterdir()}
    assert {"throughput.csv", "egress.csv", "egress_tiers.csv", "storage.csv", "vms.csv",
            "vm_network.csv", "limits.csv", "sources.csv", "PROVENANCE.md"} <= names
    cat = load_catalog()
    assert len(cat.throughput) > 3000 and len(cat.egress) > 3000
    used = ({r.rate(f).source.id for r in cat.storage.values()
             for f in ("gb_month", "write_1k", "restore_hours")}
            | {lim.write_rps.source.id for lim in cat.limits.values()})
    assert used <= set(cat.sources)


def test_worker_type_network_caps_the_measured_rate() -> None:
    # m5.xlarge has 1.25 Gbit/s of baseline network, below the measured 4.652 Gbit/s:
    # 4 VMs x 1.25 = 5 Gbit/s; 1 TiB x 8 / 5e9 = 1,759.22 s; 4 x 1,759.22 s x 0.192 USD/h.
    wl = TransferWorkload.of([(GiB, "STANDARD", 1024)], dst_provider="gcp")
    p = plan_workload(wl, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      workers=4, worker_type="m5.xlarge")
    o = p.options[0]
    assert o.name == "direct, 4 x m5.xlarge"
    assert o.timing.seconds == pytest.approx(TiB * 8 / 5e9)
    assert "VM network 1.25 Gbit/s" in o.timing.bottleneck
    assert o.c_v.usd == pytest.approx(4 * TiB * 8 / 5e9 / 3600 * 0.192)
    # Tiny moves still pay each VM's one-minute minimum.
    tiny = TransferWorkload.of([(1024, "STANDARD", 10)], dst_provider="gcp")
    p = plan_workload(tiny, src_region="aws:us-east-1", dst_region="gcp:us-central1",
                      workers=2)
    assert p.options[0].c_v.usd == pytest.approx(2 * 60 / 3600 * 1.536)


def test_plan_and_assess_read_one_catalogue() -> None:
    from cloudshift.assess.regions import resolve_region
    from cloudshift.assess.tiers import TIER_CLASS, tier_prices

    book = PriceBook.load()
    cat = book.catalog
    # One Region type: the planner's region is the described one the assessment resolves.
    region = book.region("aws:eu-west-1")
    assert (region.location, region.country, region.zones) == ("Ireland", "IE", 3)
    assert resolve_region(cat, "eu-west-1", ["aws"], "test") == region
    # One storage price per region and class, whoever asks: on the old copies Azure Blob Hot
    # in eastus was 0.0184 USD/GB-month for the planner and 0.018 for the assessment.
    compared = 0
    for key in cat.instances:
        provider = key.split(":", 1)[0]
        for tier, storage_class in TIER_CLASS[provider].items():
            mine, _ = book.storage_prices(book.region(key), storage_class)
            theirs = tier_prices(cat, key, tier)
            assert theirs is not None, (key, tier)
            assert (mine.gb_month.value, mine.write_1k.value) == (theirs.gb_month,
                                                                  theirs.writes_per_1k)
            compared += 1
    assert compared == 15 * 3
    # One VM price: the planner's worker and the assessment's instance are the same row.
    vm, _ = book.vm_price(book.region("aws:us-east-1"), "m5.8xlarge")
    inst = cat.instance("aws:us-east-1", "m5.8xlarge")
    assert inst is not None and vm.value == inst.price_hour == 1.536
    assert vm.source == inst.source.title


def test_regional_storage_prices_and_what_they_inherit() -> None:
    # S3 in eu-central-1 has its own list prices now (it used us-east-1's, flagged): a plan
    # out of Frankfurt pays 0.0245 USD/GB-month and 0.0054 per 1,000 LIST/PUT.
    book = PriceBook.load()
    frankfurt = book.region("aws:eu-central-1")
    sp, warn = book.storage_prices(frankfurt, "STANDARD")
    assert warn is None and sp.gb_month.value == 0.0245 and sp.write_1k.value == 0.0054
    assert sp.gb_month.source.startswith("Amazon S3 pricing, per region")
    assert sp.gb_month.note == ""
    # The regional row gives no restore fee and delay: they are us-east-1's, said so.
    deep, _ = book.storage_prices(frankfurt, "DEEP_ARCHIVE")
    assert deep.gb_month.value == 0.0018 and deep.restore_gb.value == 0.02
    assert (deep.restore_1k.value, deep.restore_hours.value) == (0.1, 12)
    assert deep.restore_1k.note == "aws:us-east-1 list price"
    assert deep.restore_1k.source.startswith("Amazon S3 pricing, US East")
    # A class the region has no row for is the reference region's, flagged on every rate.
    glacier, _ = book.storage_prices(frankfurt, "GLACIER")
    assert glacier.gb_month.note == "aws:us-east-1 list price; no price shipped for " \
                                    "aws:eu-central-1"
    wl = TransferWorkload.of([(GiB, "STANDARD", 1000)], dst_provider="gcp")
    p = plan_workload(wl, src_region=frankfurt, dst_region="gcp:us-central1", workers=1)
    assert p.running.src_usd_month == pytest.approx(1000 * 0.0245)


def test_the_catalogue_is_read_once(tmp_path: Path) -> None:
    first = load_catalog(user_dir=tmp_path)
    assert load_catalog(user_dir=tmp_path) is first
    # Tables are read-only: a plan cannot change what the next one reads.
    with pytest.raises(TypeError):
        first.throughput[("aws:us-east-1", "aws:us-west-2")] = first.throughput[  # type: ignore[index]
            ("aws:us-east-1", "aws:us-west-1")]
