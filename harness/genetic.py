"""PyGMO's simple genetic algorithm on a noisy Rastrigin grid, vectorised across repetitions.

The thesis' Monte-Carlo study (chapters 4-5) runs PyGMO's ``sga`` with a
population of 10, crossover probability 0.9, mutation probability 0.02 and
tournament selection, a thousand times over. :func:`run_ga` reproduces
``pagmo::sga``'s generation step on an integer genome (one grid index per
dimension) and evolves every repetition's population as one
``(repetitions, population, dims)`` array. One generation (pagmo's order):

1. *Selection*: each of the ``population`` offspring slots holds a tournament
   among ``tournament_size`` distinct individuals (sga's ``param_s``, default
   2); the lowest noisy value wins, the first drawn on a tie.
2. *Crossover* (sga's default ``"exponential"``, borrowed from differential
   evolution): each selected child picks a partner among the other selected
   individuals and copies the partner's genes from a random start gene,
   wrapping around, for one gene and then for each further gene while a
   uniform draw is below ``crossover_probability`` (at most ``dims`` genes).
   ``"binomial"`` copies each gene with that probability (and always the
   last one visited); ``"single"`` copies, with that probability, all genes
   from a random point on. (With the defaults in 3-d, 81% of exponential
   crossovers copy the whole partner: the chain stops with probability 0.1
   per gene.)
3. *Mutation*: each gene is redrawn uniformly over the grid axis with
   probability ``mutation_probability``. (pagmo draws a binomial number of
   genes, then which ones; the distribution is the same. For integer genes
   pagmo's default polynomial mutation is this uniform redraw.)
4. *Reinsertion* ("pure elitism"): children and parents are pooled and the
   best ``population`` of the pool survive, so the population's best never
   worsens. Ties keep children first (a stable sort; pagmo's sort order
   among equal values is unspecified).

All repetitions share one random generator: a repetition's draws depend on
the number of repetitions, and the same ``seed`` and settings give the same
result. :func:`draw_generation` and :func:`next_generation` are the two
halves of a generation, exposed so that a per-repetition reference can replay
the same draws.

:func:`run_pygmo_sga` runs the same experiment with PyGMO itself (an
optional dependency) on the same noisy values, for cross-checking.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from harness.noise import check_tau, hash_rows, normals_from_hash
from harness.rastrigin import RastriginGrid
from harness.validation import check_integer

#: Crossover schemes, named as in ``pygmo.sga``.
CROSSOVERS: tuple[str, ...] = ("exponential", "binomial", "single")

#: Maps flat indices ``(repetitions, k)`` to the noisy values the GA minimises, same shape.
Fitness = Callable[[np.ndarray], np.ndarray]

#: Integer type of a gene (an axis index); grids have at most 50 million points.
GENE_DTYPE = np.int32

# keeps the GA's noise stream apart from the other hashed random streams
_SALT_GA_NOISE = 0x6A


@dataclass(frozen=True)
class GASettings:
    """The genetic algorithm's parameters; the defaults are the thesis' (and ``pygmo.sga``'s)."""

    population: int = 10
    crossover_probability: float = 0.9
    mutation_probability: float = 0.02
    tournament_size: int = 2
    crossover: str = "exponential"

    def __post_init__(self) -> None:
        check_integer("population", self.population, minimum=2)
        for name in ("crossover_probability", "mutation_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if not isinstance(self.tournament_size, int) or not 1 <= self.tournament_size <= self.population:
            raise ValueError(
                f"tournament_size must be an integer in 1..population={self.population}, "
                f"got {self.tournament_size!r}"
            )
        if self.crossover not in CROSSOVERS:
            raise ValueError(f"unknown crossover {self.crossover!r}; choose one of {CROSSOVERS}")


#: The thesis' settings: population 10, crossover 0.9, mutation 0.02, tournaments of 2.
THESIS_SETTINGS = GASettings()


@dataclass(frozen=True, eq=False)
class GenerationDraws:
    """Every random draw of one generation, for all repetitions at once.

    Shapes use ``R`` repetitions, ``P`` population and ``D`` dimensions.
    """

    #: ``(R, P, tournament_size)``: distinct population slots in each offspring's tournament.
    contestants: np.ndarray
    #: ``(R, P)``: each child's crossover partner, a selected slot other than its own.
    partners: np.ndarray
    #: ``(R, P)``: the gene where crossover starts (``"single"``: the crossover point).
    crossover_start: np.ndarray
    #: ``(R, P, D)``: uniforms in [0, 1) deciding how many / which genes cross over.
    crossover_uniform: np.ndarray
    #: ``(R, P, D)``: which genes mutate.
    mutate: np.ndarray
    #: ``(R, P, D)``: the grid index a mutated gene takes.
    new_genes: np.ndarray


def distinct_slots(rng: np.random.Generator, shape: tuple[int, ...], n: int, k: int) -> np.ndarray:
    """``shape + (k,)`` draws of ``k`` distinct integers in ``[0, n)``, uniform over ordered choices.

    The ``i``-th draw is uniform over the ``n - i`` values not yet chosen:
    draw in ``[0, n - i)`` and step over each earlier choice, in ascending
    order, that is not above it.
    """
    chosen = np.empty(shape + (k,), dtype=np.intp)
    for i in range(k):
        draw = rng.integers(0, n - i, size=shape)
        for previous in np.moveaxis(np.sort(chosen[..., :i], axis=-1), -1, 0):
            draw += draw >= previous
        chosen[..., i] = draw
    return chosen


def draw_generation(
    rng: np.random.Generator, repetitions: int, dims: int, resolution: int, settings: GASettings
) -> GenerationDraws:
    """The random draws of one generation of ``repetitions`` populations."""
    shape = (repetitions, settings.population)
    partners = rng.integers(0, settings.population - 1, size=shape)
    partners += partners >= np.arange(settings.population)  # skip the child's own slot
    return GenerationDraws(
        contestants=distinct_slots(rng, shape, settings.population, settings.tournament_size),
        partners=partners,
        crossover_start=rng.integers(0, dims, size=shape),
        crossover_uniform=rng.random(shape + (dims,)),
        mutate=rng.random(shape + (dims,)) < settings.mutation_probability,
        new_genes=rng.integers(0, resolution, size=shape + (dims,), dtype=GENE_DTYPE),
    )


def crossover_mask(draws: GenerationDraws, settings: GASettings) -> np.ndarray:
    """``(R, P, D)``: which genes each child takes from its partner."""
    start = draws.crossover_start[..., None]
    uniform = draws.crossover_uniform
    dims = uniform.shape[-1]
    genes = np.arange(dims)
    if settings.crossover == "single":
        return (uniform[..., :1] < settings.crossover_probability) & (genes >= start)
    offset = genes - start  # order in which genes are visited from the start gene, wrapping
    offset += dims * (offset < 0)
    if settings.crossover == "binomial":
        visited_uniform = np.take_along_axis(uniform, offset, axis=-1)
        return (visited_uniform < settings.crossover_probability) | (offset == dims - 1)
    # exponential: one gene, then one more per consecutive success
    success = uniform[..., : dims - 1] < settings.crossover_probability
    # leading successes = position of the first failure, with a failure appended as a stop
    stop = np.zeros(success.shape[:-1] + (1,), dtype=bool)
    length = 1 + np.argmin(np.concatenate([success, stop], axis=-1), axis=-1)
    return offset < length[..., None]


def flat_index(genomes: np.ndarray, resolution: int) -> np.ndarray:
    """Flat C-order grid index of each genome (last axis: one axis index per dimension)."""
    dims = genomes.shape[-1]
    strides = resolution ** np.arange(dims - 1, -1, -1, dtype=np.int64)
    return genomes @ strides


def next_generation(
    genomes: np.ndarray,
    fitness: np.ndarray,
    draws: GenerationDraws,
    settings: GASettings,
    evaluate: Fitness,
    resolution: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One sga generation of every population: ``(R, P, D)`` genomes and ``(R, P)`` values in and out."""
    reps, population, dims = genomes.shape
    # rows are gathered through flat indices: np.take is several times faster than 2-d fancy indexing
    base = np.arange(reps)[:, None] * population
    contestant_fitness = np.take(fitness, base[..., None] + draws.contestants)
    won = np.argmin(contestant_fitness, axis=-1)  # first minimum: the earlier draw wins a tie
    winners = np.take_along_axis(draws.contestants, won[..., None], axis=-1)[..., 0]
    selected = np.take(genomes.reshape(-1, dims), base + winners, axis=0)
    mates = np.take(selected.reshape(-1, dims), base + draws.partners, axis=0)
    children = np.where(crossover_mask(draws, settings), mates, selected)
    children = np.where(draws.mutate, draws.new_genes, children)
    children_fitness = evaluate(flat_index(children, resolution))
    pool = np.concatenate([children, genomes], axis=1).reshape(-1, dims)
    pool_fitness = np.concatenate([children_fitness, fitness], axis=1)
    keep = np.argsort(pool_fitness, axis=1, kind="stable")[:, :population] + 2 * base
    return np.take(pool, keep, axis=0), np.take(pool_fitness, keep)


@dataclass(frozen=True, eq=False)
class GAResult:
    """Each repetition's best individual after each requested number of generations.

    Arrays are ``(len(generations), repetitions)``; the best is the
    population's lowest noisy value (elitism makes it the best seen so far).
    """

    generations: tuple[int, ...]
    best_index: np.ndarray
    best_fitness: np.ndarray
    #: fraction of all grid points strictly better on the clean function (0 = global minimum)
    top_fraction: np.ndarray
    #: clean value rescaled to [0, 1] over the grid, ``(f - min) / (max - min)``
    normalised_value: np.ndarray
    settings: GASettings
    seed: int

    @property
    def repetitions(self) -> int:
        """Number of repetitions."""
        return self.best_index.shape[1]

    def summary(self) -> pd.DataFrame:
        """Per generation count: mean and sample standard deviation of both quality measures."""
        columns: dict[str, object] = {"generations": list(self.generations)}
        for name in ("top_fraction", "normalised_value"):
            values = getattr(self, name)
            columns[f"mean_{name}"] = values.mean(axis=1)
            columns[f"std_{name}"] = values.std(axis=1, ddof=1) if self.repetitions > 1 else np.nan
        columns["repetitions"] = self.repetitions
        return pd.DataFrame(columns)


def check_generations(generations: int | Sequence[int]) -> tuple[int, ...]:
    """Requested generation counts as a sorted tuple of distinct non-negative integers."""
    counts = (generations,) if isinstance(generations, (int, np.integer)) else tuple(generations)
    if not counts or any(not isinstance(g, (int, np.integer)) or g < 0 for g in counts):
        raise ValueError(f"generations must be non-negative integers, got {generations!r}")
    return tuple(sorted({int(g) for g in counts}))


def _as_fitness(
    fitness: np.ndarray | Fitness, grid: RastriginGrid, repetitions: int | None
) -> tuple[Fitness, int]:
    """``fitness`` as a function of flat indices, and the number of repetitions."""
    if callable(fitness):
        reps = getattr(fitness, "repetitions", repetitions)
        if reps is None or reps < 1:
            raise ValueError(f"a fitness function needs repetitions >= 1, got {reps!r}")
        return fitness, int(reps)
    values = np.asarray(fitness)
    if values.ndim != 2 or values.shape[1] != grid.size:
        raise ValueError(
            f"noisy values must have shape (repetitions, {grid.size}) for this grid, got {values.shape}"
        )
    if repetitions is not None and repetitions != values.shape[0]:
        raise ValueError(f"repetitions={repetitions} but the noisy values have {values.shape[0]} rows")
    return (lambda flat: np.take_along_axis(values, flat, axis=1)), values.shape[0]


def run_ga(
    grid: RastriginGrid,
    fitness: np.ndarray | Fitness,
    generations: int | Sequence[int],
    settings: GASettings = THESIS_SETTINGS,
    seed: int = 0,
    repetitions: int | None = None,
    progress: bool = False,
) -> GAResult:
    """Minimise noisy grid values with sga, all repetitions at once.

    ``fitness`` is either the noisy values, ``(repetitions, grid.size)``
    (row ``r`` is repetition ``r``'s landscape), or a function from flat
    indices ``(repetitions, k)`` to values (its ``repetitions`` attribute,
    e.g. a :class:`NoisyRastrigin`, or the ``repetitions`` argument, gives
    the count). The run lasts ``max(generations)`` generations and records
    the best individual after each count in ``generations`` (0 means the
    random initial population). ``progress`` shows a bar over generations.
    """
    checkpoints = check_generations(generations)
    evaluate, reps = _as_fitness(fitness, grid, repetitions)
    rng = np.random.default_rng(seed)
    genomes = rng.integers(0, grid.resolution, size=(reps, settings.population, grid.dims), dtype=GENE_DTYPE)
    values = evaluate(flat_index(genomes, grid.resolution))
    best_index, best_fitness = [], []
    for g in tqdm(range(checkpoints[-1] + 1), desc="generations", disable=not progress, leave=False):
        if g > 0:
            draws = draw_generation(rng, reps, grid.dims, grid.resolution, settings)
            genomes, values = next_generation(genomes, values, draws, settings, evaluate, grid.resolution)
        if g in checkpoints:
            best = np.argmin(values, axis=1)
            rows = np.arange(reps)
            best_index.append(flat_index(genomes[rows, best], grid.resolution))
            best_fitness.append(values[rows, best])
    return _result(grid, checkpoints, np.array(best_index), np.array(best_fitness), settings, seed)


def _result(
    grid: RastriginGrid,
    generations: tuple[int, ...],
    best_index: np.ndarray,
    best_fitness: np.ndarray,
    settings: GASettings,
    seed: int,
) -> GAResult:
    low, high = grid.clean.min(), grid.clean.max()
    return GAResult(
        generations=generations,
        best_index=best_index,
        best_fitness=best_fitness,
        top_fraction=grid.top_fraction(best_index),
        normalised_value=(grid.clean[best_index] - low) / (high - low),
        settings=settings,
        seed=seed,
    )


@dataclass(frozen=True)
class NoisyRastrigin:
    """Each repetition's noisy grid, computed only where the GA looks.

    Repetition ``r`` sees ``clean + grid.noise_scale(tau) * z[r, i]`` with
    fresh standard normals ``z`` drawn by hashing ``(r, i)`` with ``seed``
    (:func:`harness.noise.hash_rows`): the thesis' fresh noise per
    repetition at the calibrated scale, without holding ``repetitions x
    grid.size`` values in memory (1,000 repetitions of a 100^3 grid would
    take 8 GB). ``tau = 1`` is the clean function.
    """

    grid: RastriginGrid
    tau: float
    repetitions: int
    seed: int = 0

    def __post_init__(self) -> None:
        check_tau(self.tau, "tau")
        check_integer("repetitions", self.repetitions)

    @cached_property
    def scale(self) -> float:
        """Standard deviation of the additive noise (calibrated once on the grid)."""
        return self.grid.noise_scale(self.tau)

    def at(self, repetition: np.ndarray | int, flat: np.ndarray) -> np.ndarray:
        """Noisy values of grid points ``flat`` in repetitions ``repetition`` (broadcast together)."""
        flat = np.asarray(flat)
        clean = self.grid.clean[flat]
        if self.tau == 1.0:
            return clean
        # one integer key per (repetition, point) pair
        key = np.asarray(repetition, dtype=np.int64) * self.grid.size + flat
        noise = normals_from_hash(hash_rows(key.ravel()), self.seed, _SALT_GA_NOISE)
        return clean + self.scale * noise.reshape(key.shape)

    def __call__(self, flat: np.ndarray) -> np.ndarray:
        """Noisy values of ``flat`` ``(repetitions, k)``, row ``r`` in repetition ``r``."""
        if flat.shape[0] != self.repetitions:
            raise ValueError(f"expected {self.repetitions} rows of indices, got {flat.shape[0]}")
        return self.at(np.arange(self.repetitions)[:, None], flat)

    def kendall_tau(self, sample_size: int = 4096, seed: int = 0) -> np.ndarray:
        """Per repetition, Kendall's tau-b between its noisy and the clean values.

        On the whole grid when it has at most ``sample_size`` points, else on
        one random subset of that many points (the same for every
        repetition, drawn from ``seed``): tau-b on a subset is an unbiased
        estimate of the grid's, and a 100^3 grid costs a third of a second
        a repetition in full.
        """
        if self.tau == 1.0:
            return np.ones(self.repetitions)
        points = np.arange(self.grid.size)
        if self.grid.size > sample_size:
            points = np.random.default_rng(seed).choice(self.grid.size, size=sample_size, replace=False)
        clean = self.grid.clean[points]
        noisy = self.at(np.arange(self.repetitions)[:, None], points[None, :])
        return np.array([stats.kendalltau(row, clean).statistic for row in noisy])


class _GridProblem:
    """A pygmo user-defined problem: one repetition's noisy grid over integer axis indices."""

    def __init__(self, values: np.ndarray, grid: RastriginGrid) -> None:
        self.values = values
        self.resolution = grid.resolution
        self.dims = grid.dims

    def __deepcopy__(self, memo: dict) -> _GridProblem:
        # pygmo deep-copies its problem on every evolve; the values are never written, so share them
        return self

    def fitness(self, x: np.ndarray) -> list[float]:
        """pygmo's objective: the noisy value of the grid point with axis indices ``x``."""
        flat = 0
        for gene in x:  # plain Python: pygmo calls this once per point, where numpy's overhead dominates
            flat = flat * self.resolution + int(round(gene))
        return [float(self.values[flat])]

    def get_bounds(self) -> tuple[list[int], list[int]]:
        """Axis indices run from 0 to ``resolution - 1``."""
        return [0] * self.dims, [self.resolution - 1] * self.dims

    def get_nix(self) -> int:
        """Every decision variable is an integer."""
        return self.dims


def run_pygmo_sga(
    fitness: NoisyRastrigin,
    generations: int | Sequence[int],
    settings: GASettings = THESIS_SETTINGS,
    seed: int = 0,
    progress: bool = False,
) -> GAResult:
    """The same experiment with ``pygmo.sga`` itself, one repetition at a time (for cross-checks).

    Each repetition is a pygmo problem with an integer decision vector (one
    grid index per dimension) whose fitness is that repetition's noisy
    values in ``fitness``. sga evolves in stretches between the requested
    generation counts, each stretch with a fresh seed (the algorithm's state
    is its population, so this is distributed as one uninterrupted run);
    seeds come from ``numpy.random.SeedSequence([seed, repetition])``.
    """
    try:
        import pygmo
    except ImportError as err:
        raise ImportError("run_pygmo_sga needs PyGMO: pip install 'popnas-harness[pygmo]'") from err
    checkpoints = check_generations(generations)
    grid = fitness.grid
    best_index = np.empty((len(checkpoints), fitness.repetitions), dtype=np.int64)
    best_fitness = np.empty((len(checkpoints), fitness.repetitions))
    reps = tqdm(range(fitness.repetitions), desc="pygmo sga", disable=not progress, leave=False)
    for rep in reps:
        seeds = np.random.SeedSequence([seed, rep]).generate_state(len(checkpoints) + 1).tolist()
        problem = pygmo.problem(_GridProblem(fitness.at(rep, np.arange(grid.size)), grid))
        population = pygmo.population(problem, size=settings.population, seed=seeds[0])
        done = 0
        for k, g in enumerate(checkpoints):
            if g > done:
                algorithm = pygmo.algorithm(pygmo.sga(
                    gen=g - done,
                    cr=settings.crossover_probability,
                    m=settings.mutation_probability,
                    param_s=settings.tournament_size,
                    crossover=settings.crossover,
                    selection="tournament",
                    seed=seeds[k + 1],
                ))
                population = algorithm.evolve(population)
                done = g
            genes = np.rint(population.champion_x).astype(np.int64)
            best_index[k, rep] = flat_index(genes, grid.resolution)
            best_fitness[k, rep] = population.champion_f[0]
    return _result(grid, checkpoints, best_index, best_fitness, settings, seed)
