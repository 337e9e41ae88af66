"""POST /v1/embeddings on the real server, through the official `openai` SDK and raw HTTP."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from openai import NotFoundError, OpenAI

from models.embedder import Embedder
from server.app import create_app
from server.settings import ServerSettings
from tests.conftest import Server


@pytest.fixture(scope="module")
def sdk(server: Server) -> OpenAI:
    """The official OpenAI client pointed at the test server."""
    return OpenAI(base_url=server.v1, api_key=server.api_key)


def test_sdk_embeds_a_list_and_meaning_decides_distance(sdk: OpenAI) -> None:
    """A list embeds to unit vectors; similar sentences are closer; usage counts tokens."""
    texts = [
        "The cat sleeps on the sofa.",
        "A kitten naps on the couch.",
        "Tax rates rose in 2024.",
    ]
    result = sdk.embeddings.create(model="all-MiniLM-L6-v2", input=texts)  # base64 by default
    assert result.model == "all-MiniLM-L6-v2" and result.object == "list"
    assert [d.index for d in result.data] == [0, 1, 2]
    vectors = np.array([d.embedding for d in result.data])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = vectors @ vectors.T
    assert cosine[0, 1] > cosine[0, 2] + 0.3
    assert result.usage.prompt_tokens == result.usage.total_tokens > len(texts)


def test_float_and_base64_agree_with_the_local_embedder(server: Server, sdk: OpenAI) -> None:
    """float and base64 answers match each other and the in-process embedder."""
    text = "Where is the nearest train station?"
    floats = sdk.embeddings.create(
        model="sentence-transformers/all-MiniLM-L6-v2", input=text, encoding_format="float"
    )
    packed = sdk.embeddings.create(model="all-minilm-l6-v2", input=[text])
    assert np.allclose(floats.data[0].embedding, packed.data[0].embedding, atol=1e-6)
    local = Embedder().embed([text])[0]
    assert np.allclose(floats.data[0].embedding, local, atol=1e-4)


def test_unknown_model_is_404_in_the_envelope(sdk: OpenAI) -> None:
    """An unknown embedding model is a 404 naming the served one."""
    with pytest.raises(NotFoundError) as info:
        sdk.embeddings.create(model="text-embedding-3-small", input="hi")
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "model_not_found"
    assert "all-MiniLM-L6-v2" in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "all-MiniLM-L6-v2", "input": []}, 400, "input"),
        ({"model": "all-MiniLM-L6-v2", "input": ["ok", ""]}, 400, "input"),
        ({"model": "all-MiniLM-L6-v2", "input": [[1, 2, 3]]}, 400, "input"),
        ({"model": "all-MiniLM-L6-v2", "input": 42}, 400, "input"),
        ({"model": "all-MiniLM-L6-v2"}, 400, "input"),
        ({"model": "all-MiniLM-L6-v2", "input": "x", "dimensions": 128}, 400, "dimensions"),
        ({"model": "all-MiniLM-L6-v2", "input": "x", "encoding_format": "hex"}, 400, None),
    ],
)
def test_bad_requests_answer_the_envelope(
    server: Server, body: dict, status: int, param: str | None
) -> None:
    """Bad bodies answer 400 in the error envelope naming the parameter."""
    response = httpx.post(f"{server.v1}/embeddings", json=body, headers=server.headers())
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["message"]
    if param is not None:
        assert error["param"] == param


def test_api_key_is_required(server: Server) -> None:
    """Without the API key: 401 invalid_api_key."""
    response = httpx.post(
        f"{server.v1}/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "hi"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_without_the_eval_extra_the_answer_is_501(monkeypatch: pytest.MonkeyPatch) -> None:
    # The base install lacks sentence-transformers; a None entry makes its import fail the same way.
    """Without sentence-transformers: 501 embedder_unavailable, nothing loaded."""
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    app = create_app(ServerSettings(load_predictors=False))
    response = TestClient(app).post(
        "/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "hi"}
    )
    assert response.status_code == 501
    error = response.json()["error"]
    assert error["code"] == "embedder_unavailable" and "myllama[eval]" in error["message"]
    assert not app.state.embedder.loaded


def test_counting_tokens_while_embedding_in_other_threads() -> None:
    """count_tokens and embed share one lock: threaded calls agree with serial ones."""
    embedder = Embedder()
    texts = [" ".join(["word"] * n) for n in range(1, 30)]
    serial_tokens, serial_vectors = embedder.count_tokens(texts), embedder.embed(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        counts = [pool.submit(embedder.count_tokens, texts) for _ in range(8)]
        vectors = [pool.submit(embedder.embed, texts) for _ in range(4)]
        assert {f.result() for f in counts} == {serial_tokens}
        assert all(np.allclose(f.result(), serial_vectors, atol=1e-5) for f in vectors)
