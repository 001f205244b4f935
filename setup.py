"""pip packaging of the pure-Python parts (``das_core``, ``das_ros``) and the ``das`` command.

Under ROS 2 the package is built by colcon through CMakeLists.txt (ament_cmake, messages via rosidl);
this file is not used there.
"""

from setuptools import find_packages, setup

setup(
    name="das",
    version="0.1.0",
    description="Absolute multi-person 3D human pose from one RGB camera (DAS, CVPR 2022), with a ROS 2 node",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["das_core", "das_core.*", "das_ros", "das_ros.*"]),
    package_data={"das_core": ["assets/*", "py.typed"]},
    include_package_data=True,
    # The message definitions, where das_ros.interfaces looks for them after a non-editable install
    # (a ROS build installs the same files under <prefix>/share/das_ros/msg through rosidl).
    data_files=[("share/das_ros/msg", sorted(str(p) for p in __import__("pathlib").Path("msg").glob("*.msg")))],
    install_requires=[
        "torch>=2.1",
        "numpy>=1.23",
        "pyyaml>=6",
        "safetensors>=0.4",
        "opencv-python-headless>=4.7",
        "scipy>=1.9",
        "tqdm>=4.60",
        "rosbags>=0.10",
        "matplotlib>=3.6",
    ],
    extras_require={
        "dev": [
            "pytest>=7",
            "pytest-cov>=4",
            "hypothesis>=6.80",
            "ruff>=0.4",
            "mypy>=1.8",
            "types-PyYAML",
            "onnx>=1.15",
            "onnxruntime>=1.17",
            "tensorboard>=2.12",
            # The reference the real-image scorer's OKS recall and AP are checked against (tests only).
            "pycocotools>=2.0.7",
        ],
        "export": ["onnx>=1.15", "onnxruntime>=1.17"],
        "train": ["tensorboard>=2.12"],
    },
    entry_points={"console_scripts": ["das = das_ros.cli:main"]},
)
