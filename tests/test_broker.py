"""The broker tracepay starts keeps what a payment system needs across restarts."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt

from tracepay.broker import MAX_QUEUED_MESSAGES, Broker, render_mosquitto_conf


def _client(broker: Broker, client_id: str, clean: bool = False) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=clean)
    client.connect(broker.host, broker.port)
    return client


def test_config_turns_persistence_on_and_lifts_the_queue_limit(tmp_path):
    text = render_mosquitto_conf(host="127.0.0.1", port=1999, data_dir=tmp_path)
    assert "persistence true" in text
    assert f"max_queued_messages {MAX_QUEUED_MESSAGES}" in text
    assert "listener 1999 127.0.0.1" in text
    assert "allow_anonymous true" in text
    secured = render_mosquitto_conf(host="127.0.0.1", port=1999, data_dir=tmp_path,
                                    password_file=tmp_path / "pw", acl_file=tmp_path / "acl")
    assert "allow_anonymous false" in secured and f"acl_file {tmp_path / 'acl'}" in secured


def test_an_away_subscriber_loses_nothing_past_1000_messages_and_a_restart(fresh_broker):
    subscriber = _client(fresh_broker, "ledger-like")
    subscriber.subscribe("tracepay/test", qos=1)
    subscriber.loop_start()
    time.sleep(0.3)
    subscriber.loop_stop()
    subscriber.disconnect()

    publisher = _client(fresh_broker, "publisher", clean=True)
    publisher.loop_start()
    for index in range(1500):
        publisher.publish("tracepay/test", str(index), qos=1).wait_for_publish(5)
    publisher.loop_stop()
    publisher.disconnect()

    fresh_broker.stop()
    fresh_broker.start()

    received: set[int] = set()
    done = threading.Event()

    def on_message(_client, _userdata, message):
        received.add(int(message.payload))
        if len(received) == 1500:
            done.set()

    subscriber = _client(fresh_broker, "ledger-like")
    subscriber.on_message = on_message
    subscriber.loop_start()
    done.wait(30)
    subscriber.loop_stop()
    subscriber.disconnect()
    assert received == set(range(1500))
