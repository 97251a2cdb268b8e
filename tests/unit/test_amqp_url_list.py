"""AMQP_URL naming several brokers (a cluster's nodes, docs/spec.md §5): what is accepted,
what is refused at start-up (naming AMQP_URL and the entry), and how it is logged."""

from __future__ import annotations

import pytest

from services.common import amqp
from services.common.settings import ServiceSettings, SettingsError, redact_url

NODES = "amqp://u:s3cret@10.0.0.1:5672/shop,amqp://u:s3cret@10.0.0.2:5673/shop"


def settings(amqp_url: str) -> ServiceSettings:
    return ServiceSettings.from_env("allocation", {"AMQP_URL": amqp_url})


def test_one_url_is_taken_as_it_is() -> None:
    url = "amqp://guest:guest@127.0.0.1:5672/"
    assert settings(url).amqp_url == url
    assert amqp.broker_urls(url) == [url]


def test_several_urls_are_the_nodes_in_the_listed_order() -> None:
    assert settings(NODES).amqp_url == NODES
    assert amqp.broker_urls(NODES + ", amqp://u:s3cret@10.0.0.3/shop") == [
        "amqp://u:s3cret@10.0.0.1:5672/shop",
        "amqp://u:s3cret@10.0.0.2:5673/shop",
        "amqp://u:s3cret@10.0.0.3/shop",
    ]
    assert [amqp.node_address(u) for u in amqp.broker_urls(NODES)] == [
        "10.0.0.1:5672",
        "10.0.0.2:5673",
    ]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (NODES + ",", "AMQP_URL (broker 3 of 3): empty"),
        (",".join([NODES, "http://10.0.0.3/shop"]), "AMQP_URL (broker 3 of 3): expected amqp://"),
        (
            "amqp://u@10.0.0.1:99999/shop,amqp://u@10.0.0.2/shop",
            "AMQP_URL (broker 1 of 2): the port",
        ),
        ("amqp://u@10.0.0.1/shop,amqp://u@10.0.0.2/other", "different vhosts (other, shop)"),
        ("amqp://u@10.0.0.1/shop,amqp://u@10.0.0.2", "different vhosts (/, shop)"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_setting_and_the_entry(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as refused:
        settings(value)
    assert says in str(refused.value)
    assert "s3cret" not in str(refused.value)


def test_every_password_of_the_list_is_redacted() -> None:
    assert redact_url(NODES) == ("amqp://u:***@10.0.0.1:5672/shop,amqp://u:***@10.0.0.2:5673/shop")


def test_no_broker_answering_is_explained_per_node_without_passwords() -> None:
    urls = amqp.broker_urls(NODES)
    failure = amqp.NoBrokerAnswered(
        [(urls[0], ConnectionRefusedError("refused")), (urls[1], TimeoutError())]
    )
    text = amqp.explain(failure, NODES)
    assert "10.0.0.1:5672" in text and "refused" in text
    assert "10.0.0.2:5673" in text and "TimeoutError" in text
    assert "s3cret" not in text
    assert amqp.refusal(failure) is None  # not reachable: waited for, not a configuration error
