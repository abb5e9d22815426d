import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { del, get, patch, post, type Query } from './client';
import type { Page } from './types';

/** A page of a config resource (`/providers`, `/models`…). */
export function useList<T>(path: string, query: Query = {}, enabled = true) {
  return useQuery({
    queryKey: [path, query],
    queryFn: () => get<Page<T>>(path, query),
    placeholderData: keepPreviousData,
    enabled,
  });
}

/** Every item of a resource (up to the API's page maximum), for pickers and joins. */
export function useAll<T>(path: string, enabled = true) {
  return useQuery({
    queryKey: [path, 'all'],
    queryFn: async () => (await get<Page<T>>(path, { limit: 500 })).items,
    enabled,
    staleTime: 10_000,
  });
}

/** Create, update (with the version read), delete; each refreshes the resource's queries. */
export function useResourceMutations<T extends { id: string; version: number }>(path: string) {
  const client = useQueryClient();
  const invalidate = () => client.invalidateQueries({ queryKey: [path] });
  const create = useMutation({ mutationFn: (body: object) => post<T>(path, body), onSuccess: invalidate });
  const update = useMutation({
    mutationFn: ({ item, changes }: { item: T; changes: object }) =>
      patch<T>(`${path}/${encodeURIComponent(item.id)}`, { ...changes, version: item.version }),
    onSuccess: invalidate,
    // A 409 means someone changed it meanwhile: show the current state so the next try names it.
    onError: invalidate,
  });
  const remove = useMutation({
    mutationFn: (item: T) => del(`${path}/${encodeURIComponent(item.id)}`, { version: item.version }),
    onSuccess: invalidate,
    onError: invalidate,
  });
  return { create, update, remove, invalidate };
}
