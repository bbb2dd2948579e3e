"""Platform assessment: price a workload on AWS, Google Cloud and Azure, map every machine to an
instance type, score and rank the options (``cloudshift assess``)."""

from cloudshift.assess.assessment import assess
from cloudshift.assess.catalog import Catalog, load_catalog
from cloudshift.assess.results import Assessment, Option
from cloudshift.assess.workload import Workload, load_workload, workload_from_text

__all__ = ["Assessment", "Catalog", "Option", "Workload", "assess", "load_catalog",
           "load_workload", "workload_from_text"]
