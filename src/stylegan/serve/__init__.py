"""A web service around a trained generator ("This X Does Not Exist"): ``stylegan serve``.

>>> from stylegan.serve import create_app
>>> app = create_app(stylegan.load("network.safetensors"), name="faces")   # then: uvicorn.run(app)
"""
from stylegan.serve.app import create_app
from stylegan.serve.worker import InferenceWorker, QueueFull

__all__ = ["InferenceWorker", "QueueFull", "create_app"]
