import threading

from edge_server.pipeline.offload import CpuOffloader


async def test_small_work_runs_inline_and_large_work_on_the_pool() -> None:
    off = CpuOffloader(inline_max_samples=100, max_workers=1)
    try:
        inline = await off.run(100, lambda: threading.current_thread().name)
        pooled = await off.run(101, lambda: threading.current_thread().name)
    finally:
        off.shutdown()
    assert inline == threading.current_thread().name
    assert pooled.startswith("edge-cpu")
