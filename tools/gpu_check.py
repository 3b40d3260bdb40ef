"""A short check against a real NVIDIA GPU, for a session that is lent a GPU machine.

    python tools/gpu_check.py [OUT_DIR]     # ~1 minute; writes gpu-check.json to OUT_DIR

It times one sample with each backend (NVML in-process, GPUtil via nvidia-smi), shows what each
reads, then runs `trayapp run --headless` for 20 s under a GPU load if torch is there (else idle)
and prints what landed in the dataset. On a machine without a GPU it says so and still finishes.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def time_backend(make, n: int = 50) -> dict:
    try:
        backend = make()
    except Exception as exc:  # report why the backend is unavailable, then go on
        return {"available": False, "why": str(exc)[:200]}
    times = []
    readings = None
    for _ in range(n):
        t0 = time.perf_counter()
        readings = backend.read()
        times.append(time.perf_counter() - t0)
    backend.close()
    return {"available": True, "median_ms": round(statistics.median(times) * 1000, 3),
            "max_ms": round(max(times) * 1000, 3), "readings": [r.__repr__() for r in readings or ()]}


def nvml_raw() -> dict:
    """NVML's own numbers for GPU 0: v1 and v2 memory info, power, utilisation, beside nvidia-smi's."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # no library or no driver: say so
        return {"available": False, "why": str(exc)[:200]}
    out: dict = {}
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        v1 = pynvml.nvmlDeviceGetMemoryInfo(h)
        out["v1"] = {"total": v1.total, "used": v1.used, "free": v1.free}
        try:
            v2 = pynvml.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2)
            out["v2"] = {"total": v2.total, "reserved": v2.reserved, "used": v2.used, "free": v2.free}
        except Exception as exc:  # an older driver or library
            out["v2"] = f"not available: {exc}"
        out["power_mw"] = pynvml.nvmlDeviceGetPowerUsage(h)
        util = pynvml.nvmlDeviceGetUtilizationRates(h)
        out["utilization"] = {"gpu": util.gpu, "memory": util.memory}
        out["uuid"] = pynvml.nvmlDeviceGetUUID(h)
    except Exception as exc:  # report what failed, keep the rest
        out["error"] = str(exc)[:200]
    finally:
        pynvml.nvmlShutdown()
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=memory.used,memory.total,memory.reserved,power.draw,utilization.memory",
                              "--format=csv,noheader,nounits", "-i", "0"], capture_output=True, text=True, timeout=10)
        out["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()[:200]
    except (OSError, subprocess.TimeoutExpired) as exc:
        out["nvidia_smi"] = f"not run: {exc}"
    return out


def main() -> int:
    from trayapp.probes import GputilBackend, NvmlBackend

    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", "."))
    result = {"nvml": time_backend(NvmlBackend), "gputil": time_backend(GputilBackend, n=10), "nvml_raw": nvml_raw()}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TRAYAPP_DATA_DIR": str(Path(tmp) / "data"), "TRAYAPP_CONFIG": str(Path(tmp) / "c.toml"), "TRAYAPP_NO_KEYRING": "1"}
        load = None
        try:
            import torch  # noqa: F401

            load = subprocess.Popen([sys.executable, "-c",
                                     "import torch,time\nx=torch.randn(8192,8192,device='cuda')\nt=time.time()\n"
                                     "while time.time()-t<25: y=x@x\ntorch.cuda.synchronize()"])
        except ImportError:
            result["load"] = "torch not installed: GPU idle"
        rec = subprocess.Popen([sys.executable, "-m", "trayapp.cli", "run", "--headless", "--interval", "1"], env=env,
                               stderr=subprocess.PIPE, text=True)
        time.sleep(20)
        rec.send_signal(signal.SIGTERM)
        _, err = rec.communicate(timeout=30)
        if load is not None:
            load.kill()
        result["headless_rc"] = rec.returncode
        result["headless_log"] = err.splitlines()[-5:]
        done = subprocess.run([sys.executable, "-m", "trayapp.cli", "export", "--since", "1m", "--format", "json"],
                              env=env, capture_output=True, text=True)
        rows = json.loads(done.stdout or "[]")
        result["rows"] = len(rows)
        result["last_row"] = rows[-1] if rows else None
        result["doctor"] = subprocess.run([sys.executable, "-m", "trayapp.cli", "doctor"], env=env,
                                          capture_output=True, text=True).stdout.splitlines()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu-check.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
