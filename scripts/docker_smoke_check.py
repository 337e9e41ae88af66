"""Smoke checks against a running My LLAMA container: auth, chat, embeddings, a predictor call."""

from __future__ import annotations

import argparse
import json
import sys
import time

import httpx
import openai

PREDICTORS_LOAD_SECONDS = 120  # /health/ready waits for the predictors; this is a safety net
IRIS_SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


class SmokeFailure(Exception):
    """A check that did not hold."""


def check(condition: bool, message: str) -> None:
    """Raise SmokeFailure with `message` unless `condition` holds."""
    if not condition:
        raise SmokeFailure(message)


def check_auth(base_url: str) -> None:
    """MYLLAMA_API_KEY reached the server: a request without the key gets the 401 envelope."""
    response = httpx.get(f"{base_url}/v1/models", timeout=30)
    check(response.status_code == 401, f"no key: expected 401, got {response.status_code}")
    check("error" in response.json(), f"no key: not the error envelope: {response.text}")


def check_chat(base_url: str, api_key: str) -> dict[str, object]:
    """A chat completion through the official openai SDK returns text and usage."""
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, timeout=120)
    model = client.models.list().data[0].id
    start = time.perf_counter()
    reply = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Name one colour of the rainbow."}],
        max_tokens=16,
        temperature=0,
    )
    seconds = time.perf_counter() - start
    content = reply.choices[0].message.content or ""
    check(bool(content.strip()), f"chat: empty answer: {reply}")
    check(reply.usage is not None and reply.usage.completion_tokens > 0, f"chat: usage {reply}")
    return {"model": model, "answer": content, "seconds": round(seconds, 3)}


def check_embeddings(base_url: str, api_key: str) -> dict[str, object]:
    """The image's eval extra works offline: /v1/embeddings returns one unit-length vector."""
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, timeout=120)
    reply = client.embeddings.create(model="all-MiniLM-L6-v2", input="a quantised llama")
    vector = reply.data[0].embedding
    norm = sum(x * x for x in vector) ** 0.5
    check(len(reply.data) == 1 and len(vector) > 0, f"embeddings: {len(reply.data)} vectors")
    check(abs(norm - 1.0) < 1e-3, f"embeddings: not unit-normalised (norm {norm:.4f})")
    return {"model": reply.model, "dimensions": len(vector)}


def check_predictor(base_url: str, api_key: str) -> dict[str, object]:
    """The iris predictor is listed and classifies the first iris flower as setosa."""
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        deadline = time.monotonic() + PREDICTORS_LOAD_SECONDS
        listed = client.get("/v1/predictors")
        while listed.status_code == 503 and time.monotonic() < deadline:  # still loading
            time.sleep(float(listed.headers.get("retry-after", "1")))
            listed = client.get("/v1/predictors")
        check(listed.status_code == 200, f"predictors: {listed.status_code} {listed.text}")
        check("iris" in listed.text, f"predictors: iris not listed: {listed.text}")
        answer = client.post("/v1/predict/iris", json={"inputs": [IRIS_SETOSA]})
    check(answer.status_code == 200, f"predict: {answer.status_code} {answer.text}")
    body = answer.json()
    labels = [p.get("label") for p in body.get("predictions", [])]
    check(labels == ["setosa"], f"predict: the first iris flower is not setosa: {answer.text}")
    return body


def main() -> int:
    """Run every check; print one JSON line; exit 1 on the first failure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True, help="The container's MYLLAMA_API_KEY.")
    args = parser.parse_args()
    base_url = args.base_url.rstrip("/")
    try:
        check_auth(base_url)
        result = {
            "chat": check_chat(base_url, args.api_key),
            "embeddings": check_embeddings(base_url, args.api_key),
            "predict": check_predictor(base_url, args.api_key),
        }
    except (SmokeFailure, openai.OpenAIError, httpx.HTTPError) as exc:
        sys.stderr.write(f"[docker-smoke] FAILED: {type(exc).__name__}: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
