import aiohttp

from edge_server.app import EdgeNode
from tests.transport.helpers import good_stream_works


async def test_health_and_metrics(node: EdgeNode) -> None:
    await good_stream_works(node)
    base = f"http://127.0.0.1:{node.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/health") as r:
            assert r.status == 200
            body = await r.json()
            assert body["status"] == "SERVING" and body["node_id"] == "test-node"
            assert body["active_sessions"] == 0
        async with http.get(f"{base}/metrics") as r:
            assert r.status == 200
            text = await r.text()
    chunks = [ln for ln in text.splitlines() if ln.startswith("edge_chunks_processed_total")]
    assert chunks and float(chunks[0].split()[1]) > 0
    assert 'edge_stage_latency_seconds_bucket{le="0.005",stage="total"}' in text
    assert 'edge_sessions_closed_total{reason="completed"} 1.0' in text
    # every chunk ran in some analysis batch: the batch sizes add up to the chunks analysed
    sizes = [ln for ln in text.splitlines() if ln.startswith("edge_batch_chunks_sum")]
    assert sizes and float(sizes[0].split()[1]) == float(chunks[0].split()[1])
    # the process: RSS from the standard collector, and the heap in use next to it
    values = {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines() if ln[:1] != "#"}
    rss_b = values["process_resident_memory_bytes"]
    assert rss_b > 50 * 2**20
    assert 2**20 < values["edge_process_heap_in_use_bytes"] < rss_b
    assert values["edge_process_python_blocks"] > 10_000


async def test_health_is_503_while_draining(node: EdgeNode) -> None:
    node.serving = False
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{node.http_port}/health") as r:
            assert r.status == 503
            assert (await r.json())["status"] == "NOT_SERVING"
