"""One LeNet report per session (2,000 test images), shared by the report tests."""
import pytest

from hwsim.config import preset
from hwsim.report.build import ReportJob, build_summary
from hwsim.report.write import write_report
from tests.conftest import LENET

IMAGES = 2000


@pytest.fixture(scope="session")
def lenet_summary(fashion_test) -> dict:
    job = ReportJob(model=LENET, config=preset("edge8"), images=IMAGES, latency_repeats=5, command="pytest")
    return build_summary(job)


@pytest.fixture(scope="session")
def lenet_report(lenet_summary, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports") / "lenet"
    write_report(lenet_summary, out)
    return out
