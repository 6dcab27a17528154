"""Implementation of the fake ComfyUI server behind :mod:`pytest_zimage_quality.testing`.

One responsibility per module, mirroring the parts of a real ComfyUI:

    compat      what differs between the emulated ComfyUI versions (0.18.1, 0.3.64)
    nodes       node specs (from a real /object_info recording) and model-folder mapping
    validation  POST /prompt graph validation with the real 400 bodies
    graph       execution order (ComfyUI's ExecutionList) and cache signatures
    render      deterministic, cheap PNGs whose drift grows with quantization level
    runtime     what each supported node class computes
    faults      fault injection requested from the test thread
    files       output/temp/input directories, SaveImage naming, /view lookup
    models      model folders, quantization levels, broken files, file identity
    log         the request record
    jobs        the 0.18.1 /api/jobs view over queue and history
    executor    prompt queue, worker thread, node cache, latency, model loads, history
    server      aiohttp routes, WebSocket hub, background thread, request log
    fake        FakeComfyUI, the public facade re-exported by ``testing``

Nothing here is public API: import from :mod:`pytest_zimage_quality.testing`.
"""

from __future__ import annotations
